#include "common/error.h"

namespace cr {

std::string_view CodeName(ErrorCode code) {
  switch (code) {
#define CR_NAME(name, exit_code, http) \
  case ErrorCode::name:                \
    return #name;
    CR_ERROR_CODES(CR_NAME)
#undef CR_NAME
  }
  return "INTERNAL";
}

int ExitCode(ErrorCode code) {
  switch (code) {
#define CR_EXIT(name, exit_code, http) \
  case ErrorCode::name:                \
    return exit_code;
    CR_ERROR_CODES(CR_EXIT)
#undef CR_EXIT
  }
  return 1;
}

std::optional<ErrorCode> CodeFromName(std::string_view name) {
#define CR_FROM_NAME(code_name, exit_code, http) \
  if (name == #code_name) return ErrorCode::code_name;
  CR_ERROR_CODES(CR_FROM_NAME)
#undef CR_FROM_NAME
  return std::nullopt;
}

int HttpStatus(ErrorCode code) {
  switch (code) {
#define CR_HTTP(name, exit_code, http) \
  case ErrorCode::name:                \
    return http;
    CR_ERROR_CODES(CR_HTTP)
#undef CR_HTTP
  }
  return 500;
}

std::string Error::ToString() const {
  return fmt::format("cleanroom: error[{}]: {}", CodeName(code), message);
}

}  // namespace cr
