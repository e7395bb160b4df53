# NVML through the real dlopen path, against a fake libnvidia-ml built here.
add_library(fake_nvml SHARED ${CMAKE_CURRENT_LIST_DIR}/fake_nvml.cc)
set_target_properties(fake_nvml PROPERTIES OUTPUT_NAME fake-nvidia-ml)
# It stands in for the real, uninstrumented C library: its functions carry no
# C++ type signature for clang's -fsanitize=function to compare (the loader
# calls them through its own prototypes, as it does the real ones).
if(CMAKE_CXX_COMPILER_ID MATCHES Clang)
  target_compile_options(fake_nvml PRIVATE -fno-sanitize=function)
endif()
lorad_add_test(telemetry_test SRCS ${CMAKE_CURRENT_LIST_DIR}/telemetry_test.cc
  LIBS lorad::telemetry)
add_dependencies(telemetry_test fake_nvml)
target_compile_definitions(telemetry_test PRIVATE
  LORAD_FAKE_NVML="$<TARGET_FILE:fake_nvml>")
