# Faults (issue 10) against the real lorad and lorad-worker processes: the
# data-directory lock, worker liveness, Watch past the end, SIGTERM drain.
foreach(name faults_lock faults_watch faults_liveness faults_drain)
  lorad_add_test(integration_${name}_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/${name}_test.cc
    LIBS lorad_it_support lorad_it_protos
    LABELS integration)
  set_tests_properties(integration_${name}_test PROPERTIES TIMEOUT 900)
  foreach(dep lorad lorad-worker)
    if(TARGET ${dep})
      add_dependencies(integration_${name}_test ${dep})
    endif()
  endforeach()
endforeach()

# Opens the daemon's SQLite file itself to break the store mid-job.
lorad_add_test(integration_faults_store_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/faults_store_test.cc
  LIBS lorad_it_support SQLite::SQLite3
  LABELS integration)
set_tests_properties(integration_faults_store_test PROPERTIES TIMEOUT 900)
foreach(dep lorad lorad-worker)
  if(TARGET ${dep})
    add_dependencies(integration_faults_store_test ${dep})
  endif()
endforeach()
