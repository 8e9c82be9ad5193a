// The one registry of stable error codes, their exit codes and HTTP statuses,
// and the Error/Result types every fallible function returns.
#pragma once

#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace cr {

// X(NAME, exit code, HTTP status). Codes are part of the contract: scripts and
// tests match on them, never on message wording. Add, never rename.
#define CR_ERROR_CODES(X)                      \
  X(INTERNAL, 1, 500)                          \
  X(ROOM_BUSY, 1, 503)                         \
  X(SERVER_UNREACHABLE, 1, 503)                \
  X(USAGE, 2, 400)                             \
  X(QUERY_REFUSED, 3, 403)                     \
  X(THRESHOLD_NOT_MET, 3, 403)                 \
  X(REGION_REFUSED, 3, 403)                    \
  X(REGION_MISMATCH, 3, 409)                   \
  X(SPEC_MISMATCH, 3, 409)                     \
  X(PACKAGE_REPLAYED, 3, 409)                  \
  X(ROOM_NOT_ACTIVE, 3, 409)                   \
  X(ROOM_EXISTS, 3, 409)                       \
  X(KEY_UNPROTECTED, 3, 409)                   \
  X(BACKUP_STALE, 3, 409)                      \
  X(QUERY_LIMIT_EXCEEDED, 3, 413)              \
  X(BUDGET_EXHAUSTED, 4, 429)                  \
  X(USAGE_EXHAUSTED, 4, 429)                   \
  X(UNKNOWN_SIGNER, 5, 401)                    \
  X(WRONG_SIGNER, 5, 403)                      \
  X(SIGNATURE_MISSING, 5, 403)                 \
  X(NOT_AUTHORIZED, 5, 403)                    \
  X(KEY_INVALID, 5, 401)                       \
  X(AUTH_MISSING, 5, 401)                      \
  X(AUTH_MALFORMED, 5, 401)                    \
  X(AUTH_UNKNOWN_PARTY, 5, 401)                \
  X(AUTH_BAD_SIGNATURE, 5, 401)                \
  X(AUTH_DIGEST_MISMATCH, 5, 401)              \
  X(AUTH_EXPIRED, 5, 401)                      \
  X(AUTH_REPLAYED, 5, 401)                     \
  X(UNLOCK_FAILED, 5, 401)                     \
  X(KEY_STORE_UNAVAILABLE, 5, 503)             \
  X(SIGNATURE_INVALID, 6, 422)                 \
  X(TAMPERED, 6, 422)                          \
  X(AUDIT_CHAIN_BROKEN, 6, 422)                \
  X(TLS_UNTRUSTED, 6, 502)                     \
  X(BAD_INPUT, 7, 400)                         \
  X(FILE_UNREADABLE, 7, 400)                   \
  X(FILE_EXISTS, 7, 409)                       \
  X(SPEC_INVALID, 7, 400)                      \
  X(SCHEMA_MISMATCH, 7, 400)                   \
  X(CAST_FAILED, 7, 400)                       \
  X(UNKNOWN_DATASET, 7, 404)                   \
  X(UNKNOWN_COLUMN, 7, 400)                    \
  X(SQL_INVALID, 7, 400)                       \
  X(RESULT_NOT_FOUND, 7, 404)                  \
  X(NOT_SUPPORTED, 7, 400)                     \
  X(BODY_TOO_LARGE, 7, 413)                    \
  X(REQUEST_TIMEOUT, 7, 408)

enum class ErrorCode {
#define CR_ENUM(name, exit_code, http) name,
  CR_ERROR_CODES(CR_ENUM)
#undef CR_ENUM
};

std::string_view CodeName(ErrorCode code);
int ExitCode(ErrorCode code);
int HttpStatus(ErrorCode code);
// The code a name stands for (an error body from the server carries the name);
// nullopt for a name this build does not know.
std::optional<ErrorCode> CodeFromName(std::string_view name);

// An error: a stable code plus a message for people. Messages never carry data
// values, only names of things (files, columns, fields) and counts.
struct Error {
  ErrorCode code = ErrorCode::INTERNAL;
  std::string message;

  // "cleanroom: error[CODE]: message"
  std::string ToString() const;
};

// A value or an Error. [[nodiscard]]: a dropped Result or Status is an ignored
// failure, so the compiler flags every one (-Werror=unused-result); a
// deliberate drop says why, with `(void)`.
template <typename T>
class [[nodiscard]] Result : public std::expected<T, Error> {
 public:
  using std::expected<T, Error>::expected;
  Result() = default;
  Result(const std::expected<T, Error>& e) : std::expected<T, Error>(e) {}
  Result(std::expected<T, Error>&& e) : std::expected<T, Error>(std::move(e)) {}
};
using Status = Result<void>;

template <typename... Args>
std::unexpected<Error> Fail(ErrorCode code, fmt::format_string<Args...> f, Args&&... args) {
  return std::unexpected(Error{code, fmt::format(f, std::forward<Args>(args)...)});
}

inline Status Ok() { return {}; }

}  // namespace cr

// Propagates an error from an expression returning Result/Status.
#define CR_TRY(expr)                                       \
  do {                                                     \
    auto _cr_status = (expr);                              \
    if (!_cr_status) return std::unexpected(_cr_status.error()); \
  } while (0)

#define CR_CONCAT_INNER(a, b) a##b
#define CR_CONCAT(a, b) CR_CONCAT_INNER(a, b)
// CR_ASSIGN(auto x, Expr()) : assigns the value or returns the error.
#define CR_ASSIGN(lhs, expr) CR_ASSIGN_IMPL(CR_CONCAT(_cr_r_, __LINE__), lhs, expr)
#define CR_ASSIGN_IMPL(tmp, lhs, expr)              \
  auto tmp = (expr);                                \
  if (!tmp) return std::unexpected(tmp.error());    \
  lhs = std::move(*tmp)
