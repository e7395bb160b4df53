# A job on the LLM.int8 base through the real lorad and lorad-worker:
# training, the adapter's registration and serving on the int8 base.
lorad_add_test(integration_int8_base_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/int8_base_test.cc
  LIBS lorad_it_serving lorad_it_support
  LABELS integration)
set_tests_properties(integration_int8_base_test PROPERTIES TIMEOUT 1800)
foreach(dep lorad lorad-worker)
  if(TARGET ${dep})
    add_dependencies(integration_int8_base_test ${dep})
  endif()
endforeach()
