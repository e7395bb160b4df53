# A real Prometheus (Debian package prometheus) scraping the real lorad; the
# test skips when the prometheus binary is missing. The deploy/ Prometheus
# files are checked with promtool when it is installed.
lorad_add_test(integration_observability_test
  SRCS ${CMAKE_CURRENT_LIST_DIR}/observability_test.cc
       ${CMAKE_CURRENT_LIST_DIR}/prometheus_process.cc
  LIBS lorad_it_support lorad_it_protos nlohmann_json::nlohmann_json
  LABELS integration)
set_tests_properties(integration_observability_test PROPERTIES TIMEOUT 900)
if(TARGET lorad)
  add_dependencies(integration_observability_test lorad)
endif()
if(TARGET lorad-worker)
  add_dependencies(integration_observability_test lorad-worker)
endif()

find_program(LORAD_PROMTOOL promtool)
if(LORAD_PROMTOOL)
  add_test(NAME deploy_promtool_check_config
    COMMAND ${LORAD_PROMTOOL} check config
            ${PROJECT_SOURCE_DIR}/deploy/prometheus/prometheus.yml)
  add_test(NAME deploy_promtool_check_rules
    COMMAND ${LORAD_PROMTOOL} check rules
            ${PROJECT_SOURCE_DIR}/deploy/prometheus/lorad_alerts.yml)
endif()

# README's flag table against `lorad --help`.
if(TARGET lorad)
  lorad_add_test(integration_readme_flags_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/readme_flags_test.cc
    LIBS lorad_it_support
    LABELS integration)
  add_dependencies(integration_readme_flags_test lorad)
endif()
if(LORAD_PROMTOOL)
  add_test(NAME deploy_promtool_test_rules
    COMMAND ${LORAD_PROMTOOL} test rules lorad_alerts_test.yml
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}/deploy/prometheus)
endif()
