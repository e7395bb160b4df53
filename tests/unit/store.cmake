# The SQLite layer (Db), the stores over it, and the disk faults the
# server's writers (dataset uploads, the adapter registry) must survive.
foreach(name db job_store adapter_store batch_job_store server_disk_faults)
  lorad_add_test(${name}_test SRCS ${CMAKE_CURRENT_LIST_DIR}/${name}_test.cc
    LIBS lorad::server_internals lorad::model)
endforeach()
