# Integration tests: the real lorad (and, when built, lorad-worker) processes
# on loopback, driven by a real gRPC client. Tests that need the worker skip
# when it was not built (a LibTorch-less build).
set(LORAD_IT_DIR ${CMAKE_CURRENT_LIST_DIR})

# Client stubs for the standard health and reflection services.
add_library(lorad_it_protos STATIC
  ${LORAD_IT_DIR}/protos/health_check.proto
  ${LORAD_IT_DIR}/protos/server_reflection.proto)
target_link_libraries(lorad_it_protos PUBLIC protobuf::libprotobuf gRPC::grpc++)
# protobuf_generate names the outputs by the proto's path below tests/:
# "integration/protos/health_check.pb.h" in the build tree.
target_include_directories(lorad_it_protos PUBLIC ${CMAKE_CURRENT_BINARY_DIR})
get_target_property(lorad_it_grpc_plugin gRPC::grpc_cpp_plugin LOCATION)
protobuf_generate(TARGET lorad_it_protos LANGUAGE cpp
  IMPORT_DIRS ${LORAD_IT_DIR}/protos)
protobuf_generate(TARGET lorad_it_protos LANGUAGE grpc
  GENERATE_EXTENSIONS .grpc.pb.h .grpc.pb.cc
  PLUGIN "protoc-gen-grpc=${lorad_it_grpc_plugin}"
  IMPORT_DIRS ${LORAD_IT_DIR}/protos)

add_library(lorad_it_support STATIC
  ${LORAD_IT_DIR}/daemon_process.cc
  ${LORAD_IT_DIR}/client_util.cc)
target_include_directories(lorad_it_support PUBLIC ${LORAD_IT_DIR})
target_link_libraries(lorad_it_support PUBLIC lorad::proto gRPC::grpc++
  absl::status absl::statusor absl::strings absl::str_format absl::time
  GTest::gtest)
target_compile_definitions(lorad_it_support PRIVATE
  LORAD_BINARY_DIR="${PROJECT_BINARY_DIR}")

foreach(name bad_input health_reflection training recovery unread_streams
    crash_loop drain_checkpoint socket_dir)
  lorad_add_test(integration_${name}_test
    SRCS ${LORAD_IT_DIR}/${name}_test.cc
    LIBS lorad_it_support lorad_it_protos
    LABELS integration)
  set_tests_properties(integration_${name}_test PROPERTIES TIMEOUT 1800)
  if(TARGET lorad)
    add_dependencies(integration_${name}_test lorad)
  endif()
  if(TARGET lorad-worker)
    add_dependencies(integration_${name}_test lorad-worker)
  endif()
endforeach()
# The training test writes a random large-vocabulary model to train on.
target_link_libraries(integration_training_test PRIVATE lorad::model)
