# The LLM.int8 base against bitsandbytes (a Python peer run at test time;
# the peer's tests skip without a venv that has bitsandbytes).
if(LORAD_WITH_TORCH)
  lorad_add_test(int8_test SRCS ${CMAKE_CURRENT_LIST_DIR}/int8_test.cc
    LIBS lorad::worker lorad::common)
  target_precompile_headers(int8_test REUSE_FROM lorad_worker_lib)
  set_tests_properties(int8_test PROPERTIES TIMEOUT 600)
endif()
# The estimate and admission of an int8-base job (torch-free).
lorad_add_test(int8_admission_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/int8_admission_test.cc
  LIBS lorad::server_internals)
# loractl's --quantization and its job view.
lorad_add_test(loractl_int8_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/loractl_int8_test.cc
  LIBS lorad::client)
# The worker's RPCs with a quantization (in-process service).
if(LORAD_WITH_TORCH)
  lorad_add_test(int8_worker_rpc_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/int8_worker_rpc_test.cc
    LIBS lorad::worker_service)
  target_precompile_headers(int8_worker_rpc_test REUSE_FROM lorad_worker_lib)
  set_tests_properties(int8_worker_rpc_test PROPERTIES TIMEOUT 600
    ENVIRONMENT OMP_WAIT_POLICY=passive)
endif()
