# Fuzz target for chat templates (outside input: every model directory).
# After fuzz.cmake, which defines lorad_add_fuzz.
lorad_add_fuzz(jinja_fuzz CORPUS jinja LIBS lorad::model)
