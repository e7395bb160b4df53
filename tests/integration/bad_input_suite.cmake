# The bad-input suite: over 100 bad calls across every RPC and uploaded
# format against the real daemon and worker, while another client streams.
lorad_add_test(integration_bad_input_suite_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/bad_input_suite.cc
       ${CMAKE_CURRENT_LIST_DIR}/bad_input_suite_test.cc
       ${CMAKE_CURRENT_LIST_DIR}/bad_input_uploads_test.cc
  LIBS lorad_it_serving lorad_it_support absl::synchronization
  LABELS integration)
set_tests_properties(integration_bad_input_suite_test PROPERTIES TIMEOUT 1800)
foreach(dep lorad lorad-worker)
  if(TARGET ${dep})
    add_dependencies(integration_bad_input_suite_test ${dep})
  endif()
endforeach()
