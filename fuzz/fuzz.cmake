# Injected with -DCMAKE_PROJECT_INCLUDE=fuzz/fuzz.cmake by scripts/fuzz: once
# the whole tree is configured, includes fuzz/CMakeLists.txt so no shared CMake
# file needs to know about it. (Equivalent top-level line for the lead:
#   if(CLEANROOM_FUZZ) add_subdirectory(fuzz) endif() )
if(NOT CLEANROOM_FUZZ_ADDED)
  set(CLEANROOM_FUZZ_ADDED ON)
  cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL include ${CMAKE_SOURCE_DIR}/fuzz/CMakeLists.txt)
endif()
