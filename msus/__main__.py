from msus.cli import main

raise SystemExit(main())
