#include "common/error.h"

#include <gtest/gtest.h>

namespace cr {
namespace {

TEST(ErrorTest, CodesMapToContractExitCodes) {
  EXPECT_EQ(ExitCode(ErrorCode::INTERNAL), 1);
  EXPECT_EQ(ExitCode(ErrorCode::USAGE), 2);
  EXPECT_EQ(ExitCode(ErrorCode::QUERY_REFUSED), 3);
  EXPECT_EQ(ExitCode(ErrorCode::PACKAGE_REPLAYED), 3);
  EXPECT_EQ(ExitCode(ErrorCode::BUDGET_EXHAUSTED), 4);
  EXPECT_EQ(ExitCode(ErrorCode::WRONG_SIGNER), 5);
  EXPECT_EQ(ExitCode(ErrorCode::SIGNATURE_INVALID), 6);
  EXPECT_EQ(ExitCode(ErrorCode::TAMPERED), 6);
  EXPECT_EQ(ExitCode(ErrorCode::SCHEMA_MISMATCH), 7);
  EXPECT_EQ(HttpStatus(ErrorCode::NOT_AUTHORIZED), 403);
}

TEST(ErrorTest, NamesMapBackToCodes) {
  // A client turns the server's error body back into the local exit code.
  EXPECT_EQ(CodeFromName("AUTH_REPLAYED"), ErrorCode::AUTH_REPLAYED);
  EXPECT_EQ(CodeFromName(CodeName(ErrorCode::BODY_TOO_LARGE)), ErrorCode::BODY_TOO_LARGE);
  EXPECT_EQ(CodeFromName("auth_replayed"), std::nullopt);
  EXPECT_EQ(CodeFromName("NO_SUCH_CODE"), std::nullopt);
  EXPECT_EQ(ExitCode(ErrorCode::AUTH_BAD_SIGNATURE), 5);
  EXPECT_EQ(HttpStatus(ErrorCode::AUTH_EXPIRED), 401);
  EXPECT_EQ(HttpStatus(ErrorCode::BODY_TOO_LARGE), 413);
  EXPECT_EQ(HttpStatus(ErrorCode::REQUEST_TIMEOUT), 408);
  EXPECT_EQ(ExitCode(ErrorCode::TLS_UNTRUSTED), 6);
  EXPECT_EQ(ExitCode(ErrorCode::SERVER_UNREACHABLE), 1);
}

TEST(ErrorTest, FormatsAsContract) {
  Error e{ErrorCode::SIGNATURE_INVALID, "bad"};
  EXPECT_EQ(e.ToString(), "cleanroom: error[SIGNATURE_INVALID]: bad");
}

Result<int> Half(int x) {
  if (x % 2) return Fail(ErrorCode::BAD_INPUT, "{} is odd", x);
  return x / 2;
}

Result<int> Quarter(int x) {
  CR_ASSIGN(int h, Half(x));
  CR_ASSIGN(int q, Half(h));
  return q;
}

TEST(ErrorTest, MacrosPropagate) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::BAD_INPUT);
  EXPECT_EQ(r.error().message, "3 is odd");
}

}  // namespace
}  // namespace cr
