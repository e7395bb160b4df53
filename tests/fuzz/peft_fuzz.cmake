# Fuzz target for adapter_config.json (outside input: every adapter upload).
# After fuzz.cmake, which defines lorad_add_fuzz.
lorad_add_fuzz(adapter_config_fuzz CORPUS adapter_config LIBS lorad::model)
