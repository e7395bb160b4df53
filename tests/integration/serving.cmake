# Serving integration tests: adapters and batch inference through the real
# lorad and lorad-worker processes.
add_library(lorad_it_serving STATIC ${CMAKE_CURRENT_LIST_DIR}/serving_util.cc)
target_include_directories(lorad_it_serving PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(lorad_it_serving PUBLIC lorad_it_support
  lorad::model nlohmann_json::nlohmann_json)

foreach(name adapters batch loractl_serving)
  lorad_add_test(integration_${name}_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/${name}_test.cc
    LIBS lorad_it_serving lorad_it_support
    LABELS integration)
  set_tests_properties(integration_${name}_test PROPERTIES TIMEOUT 1800)
  if(TARGET lorad)
    add_dependencies(integration_${name}_test lorad)
  endif()
  if(TARGET lorad-worker)
    add_dependencies(integration_${name}_test lorad-worker)
  endif()
  if(TARGET loractl)
    add_dependencies(integration_${name}_test loractl)
  endif()
endforeach()
