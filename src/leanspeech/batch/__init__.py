"""Many files transcribed into a folder: the in-process job (``job``) and its Ray workers (``on_ray``)."""
