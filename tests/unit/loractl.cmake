# loractl's pure helpers: argument parsing, formatting, progress, tables.
lorad_add_test(loractl_args_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/loractl_args_test.cc
  LIBS lorad::client)
lorad_add_test(loractl_request_flags_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/loractl_request_flags_test.cc
  LIBS lorad::client)
lorad_add_test(loractl_format_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/loractl_format_test.cc
  LIBS lorad::client)
lorad_add_test(loractl_progress_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/loractl_progress_test.cc
  LIBS lorad::client)
lorad_add_test(loractl_output_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/loractl_output_test.cc
  LIBS lorad::client)

# The binary end to end, against an in-process fake lorad.
lorad_add_test(loractl_cli_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/loractl_cli_test.cc
  LIBS lorad::proto gRPC::grpc++ nlohmann_json::nlohmann_json absl::strings)
add_dependencies(loractl_cli_test loractl)
# The hyperparameter defaults loractl fills (a header of lorad::common).
target_include_directories(loractl_cli_test PRIVATE
  $<TARGET_PROPERTY:lorad_common,INTERFACE_INCLUDE_DIRECTORIES>)
