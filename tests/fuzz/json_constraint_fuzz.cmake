# Fuzz target for response_format JSON Schemas and the constrained walk.
# After fuzz.cmake, which defines lorad_add_fuzz.
lorad_add_fuzz(json_constraint_fuzz CORPUS json_constraint LIBS lorad::model)
