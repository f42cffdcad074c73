# Run by CPack (CPACK_PRE_BUILD_SCRIPTS) on the staged files: CPACK_STRIP_FILES strips the
# binary and plugins but not static libraries, so libkbuild-sdk.a loses its debug info here
# (34 of its 36 MB in a RelWithDebInfo build), as dh_strip would.
file(GLOB_RECURSE archives "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/*.a")
foreach(archive IN LISTS archives)
  execute_process(COMMAND "${CPACK_KBUILD_STRIP}" --strip-debug "${archive}" RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${archive}: ${CPACK_KBUILD_STRIP} --strip-debug failed (${status})")
  endif()
endforeach()
