"""Small things every layer uses: money in fen, dates as people write them, ID numbers, and
the forgiving parsers of what people type. Imports nothing else of bangfu_bot but `texts`."""
