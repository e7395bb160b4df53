# Fuzz targets for the serving parsers (see fuzz.cmake).
lorad_add_fuzz(batch_input_fuzz CORPUS batch_input LIBS lorad::server_internals)
lorad_add_fuzz(openai_request_fuzz CORPUS openai_request
  LIBS lorad::server_internals)
