"""Asset records: the table every part of the pipeline and the catalogue reads."""
