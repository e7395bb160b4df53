# Fuzz targets for the serving parsers (see fuzz.cmake).
lorad_add_fuzz(batch_input_fuzz CORPUS batch_input LIBS lorad::server_internals)
