# The OpenAI-compatible HTTP API (README "OpenAI-compatible API"): the real
# `openai` SDK and curl against the real daemon and worker.
lorad_add_test(integration_openai_api_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/openai_api_test.cc
  LIBS lorad_it_auth lorad_it_serving lorad_it_support
       nlohmann_json::nlohmann_json
  LABELS integration)
set_tests_properties(integration_openai_api_test PROPERTIES TIMEOUT 1800)
foreach(target lorad lorad-worker loractl)
  if(TARGET ${target})
    add_dependencies(integration_openai_api_test ${target})
  endif()
endforeach()
