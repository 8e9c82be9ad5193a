# Warnings on everywhere; sanitizers when asked.
function(cr_warnings target)
  # A dropped Status or Result is an ignored failure: an error, not a warning.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-missing-field-initializers
                         -Werror=unused-result)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    # GCC 12 reports -Wrestrict falsely inside std::string at -O3 (GCC bug 105329).
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
endfunction()

if(CLEANROOM_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
