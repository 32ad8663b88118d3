"""Batch write-back of Personalize batch inference output to Segment profiles: the start
action, the splitter (output file -> byte-range chunk messages) and the chunk worker."""
