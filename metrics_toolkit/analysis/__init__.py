"""Analysis over loaded frames: computations shared by reports and the explorer."""
