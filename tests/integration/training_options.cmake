# Issue 15's job options (method / DPO, quantization, paged optimizers)
# through gRPC, loractl and the OpenAI-compatible API on the real daemon and
# worker. training_options_dpo needs the worker's DPO trainer and the
# "preference" dataset format.
foreach(name training_options training_options_dpo)
  lorad_add_test(integration_${name}_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/${name}_test.cc
    LIBS lorad_it_auth nlohmann_json::nlohmann_json
    LABELS integration)
  set_tests_properties(integration_${name}_test PROPERTIES TIMEOUT 1800)
  foreach(target lorad lorad-worker loractl)
    if(TARGET ${target})
      add_dependencies(integration_${name}_test ${target})
    endif()
  endforeach()
endforeach()
