// cleanroom: the one binary. Everything lives in the libraries; this is main().
#include "cli/cli.h"

int main(int argc, char** argv) { return cr::cli::Main(argc, argv); }
