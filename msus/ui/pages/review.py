"""Review page: one loop in the player, measurements, analysis, finding, export."""

from msus.ui import review_page

review_page.render()
