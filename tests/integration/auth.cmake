# Identity and access (README "Security"): API tokens and roles, SIGHUP
# reload, ownership, call limits, TLS and mTLS, on the real daemon + worker.
add_library(lorad_it_auth STATIC ${CMAKE_CURRENT_LIST_DIR}/auth_util.cc)
target_link_libraries(lorad_it_auth PUBLIC lorad_it_support)

foreach(name auth_matrix auth_daemon ownership tls connection)
  lorad_add_test(integration_${name}_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/${name}_test.cc
    LIBS lorad_it_auth lorad_it_protos
    LABELS integration)
  set_tests_properties(integration_${name}_test PROPERTIES TIMEOUT 900)
  foreach(target lorad lorad-worker loractl)
    if(TARGET ${target})
      add_dependencies(integration_${name}_test ${target})
    endif()
  endforeach()
endforeach()
