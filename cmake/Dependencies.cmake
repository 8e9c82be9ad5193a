# Finds every dependency. DuckDB comes from DUCKDB_ROOT (default: the pinned copy
# scripts/setup fetches into third_party/duckdb); point it at your own build with
# -DDUCKDB_ROOT=DIR (DIR/include/duckdb.h and DIR/lib/libduckdb.so).
find_package(PkgConfig REQUIRED)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium>=1.0.18)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL 3 REQUIRED)  # SHA-256 with CPU extensions for pseudonyms; TLS for serve
if(CLEANROOM_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(CLEANROOM_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()

set(DUCKDB_ROOT "${CMAKE_SOURCE_DIR}/third_party/duckdb" CACHE PATH "DuckDB install (include/duckdb.h, lib/libduckdb.so)")
find_path(DUCKDB_INCLUDE_DIR duckdb.h PATHS ${DUCKDB_ROOT}/include NO_DEFAULT_PATH)
find_library(DUCKDB_LIBRARY duckdb PATHS ${DUCKDB_ROOT}/lib NO_DEFAULT_PATH)
if(NOT DUCKDB_INCLUDE_DIR OR NOT DUCKDB_LIBRARY)
  message(FATAL_ERROR "DuckDB not found under ${DUCKDB_ROOT}: run scripts/setup or pass -DDUCKDB_ROOT=DIR")
endif()
add_library(duckdb_c SHARED IMPORTED)
set_target_properties(duckdb_c PROPERTIES
  IMPORTED_LOCATION ${DUCKDB_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${DUCKDB_INCLUDE_DIR})
# Find libduckdb.so at run time without LD_LIBRARY_PATH.
get_filename_component(DUCKDB_LIBDIR ${DUCKDB_LIBRARY} DIRECTORY)
set(CMAKE_BUILD_RPATH ${DUCKDB_LIBDIR})
set(CMAKE_INSTALL_RPATH ${DUCKDB_LIBDIR})

# PKCS#11 (room key stores on an HSM/KMS/TPM): only the header, from p11-kit;
# the module itself is dlopen()ed at run time.
find_path(P11KIT_INCLUDE_DIR p11-kit/pkcs11.h PATH_SUFFIXES p11-kit-1)
if(NOT P11KIT_INCLUDE_DIR)
  message(FATAL_ERROR "p11-kit/pkcs11.h not found: install libp11-kit-dev (scripts/setup)")
endif()
