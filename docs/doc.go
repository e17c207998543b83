// Package docs holds no code. Its tests run the shell blocks of README.md
// and of the documents in this directory, so that a block a reader
// pastes works as printed and cannot drift from the commands.
//
// A fenced block whose language is sh or bash is run, in a copy of the
// repository with syncpub and syncsub built at its root and first on
// PATH, unless an HTML comment right above it says otherwise:
//
//	<!-- doctest: skip (why it cannot run here) -->
//	<!-- doctest: lines 1 (run only these lines, comma-separated) -->
//	<!-- doctest: repeat 5 -->
//	<!-- doctest: timeout 2m -->
//	<!-- doctest: continues (run after the block above, in its directory) -->
//	<!-- doctest: expect 3x ^outcome ok: lost 0, -->
//
// A comment may hold several directives, one per line. expect takes a
// regular expression matched against each line of the block's output
// (stdout and stderr), at least once or at least N times with "Nx".
//
// A block passes when no command in it fails (a non-zero status of a
// foreground command, or of a background job collected by wait, unless a
// signal the block sent ended it), nothing is left running, and every
// expect matches. Each block (with the blocks that continue it) runs in a
// network namespace of its own when the system allows one, so blocks that
// bind the documented fixed ports run side by side and beside the other
// tests; otherwise (or with SYNCMQ_DOCTEST_SHARED_LOOPBACK=1) they take
// turns on the host's loopback, one test binary at a time.
//
// Every sh block, run or skipped, is also checked without running: each
// flag it gives syncpub or syncsub exists, each go test pattern matches a
// test of the package named, and each fuzzing run has a -fuzztime.
//
// Every go block is type-checked against this module's packages. A block
// that starts with a package clause is a whole file. Any other block is
// a fragment: it is checked as the body of a function, with this
// module's public packages and the standard packages it names in scope,
// and a variable or import it leaves unused is fine. The fragment's free
// variables are the function's parameters, given above it:
//
//	<!-- doctest: given ctx context.Context, payload []byte -->
package docs
