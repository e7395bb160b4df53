# The OpenAI sampling extras in the worker: constraints, presence and
# frequency penalties, logprobs (against transformers too).
if(LORAD_WITH_TORCH)
  lorad_add_test(sampling_extras_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/sampling_extras_test.cc LIBS lorad::worker)
  lorad_add_test(logprobs_parity_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/logprobs_parity_test.cc
    LIBS lorad::worker nlohmann_json::nlohmann_json)
  foreach(t sampling_extras_test logprobs_parity_test)
    target_precompile_headers(${t} REUSE_FROM lorad_worker_lib)
  endforeach()
  set_tests_properties(sampling_extras_test logprobs_parity_test PROPERTIES
    TIMEOUT 900 ENVIRONMENT OMP_WAIT_POLICY=passive)
endif()
