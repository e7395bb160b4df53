# Many jobs on one base through the real daemon and worker: a second job
# runs fused with the first (--max_concurrent_jobs=2).
lorad_add_test(integration_concurrent_jobs_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/concurrent_jobs_test.cc
  LIBS lorad_it_auth
  LABELS integration)
set_tests_properties(integration_concurrent_jobs_test PROPERTIES TIMEOUT 900)
foreach(target lorad lorad-worker)
  if(TARGET ${target})
    add_dependencies(integration_concurrent_jobs_test ${target})
  endif()
endforeach()
