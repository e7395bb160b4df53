# Admission control at CreateJob / batch / Generate: the memory estimate
# against the device's room (torch-free).
lorad_add_test(admission_test SRCS ${CMAKE_CURRENT_LIST_DIR}/admission_test.cc
  LIBS lorad::server_internals)
