# The OpenAI sampling extras through the real daemon and worker: the server's
# refusals of each new field, and logprobs and penalties end to end.
lorad_add_test(integration_sampling_extras_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/sampling_extras_test.cc
  LIBS lorad_it_support
  LABELS integration)
set_tests_properties(integration_sampling_extras_test PROPERTIES TIMEOUT 1800)
foreach(dep lorad lorad-worker)
  if(TARGET ${dep})
    add_dependencies(integration_sampling_extras_test ${dep})
  endif()
endforeach()
