# Limits on outside input: the bounded JSON scan and message excerpts
# (lorad::common), and the server's request validation.
lorad_add_test(bounded_json_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/bounded_json_test.cc
  LIBS lorad::common nlohmann_json::nlohmann_json)
lorad_add_test(generate_validation_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/generate_validation_test.cc
  LIBS lorad::server_internals)
