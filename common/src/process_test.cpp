// ChildProcess with real programs: output captured apart from errors, input fed to stdin, names
// looked up in PATH, why a child could not start, CPU pinning, and a detached process that
// outlives the object that started it.
#include "calcmesh/process.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace calcmesh {
namespace {

ChildProcess::Options command(std::vector<std::string> argv) {
    ChildProcess::Options options;
    options.argv = std::move(argv);
    return options;
}

TEST(RunCaptured, KeepsOutputAndErrorsApartAndFeedsTheInput) {
    const auto result = run_captured(command({"sh", "-c", "tr a-z A-Z; echo oops >&2; exit 3"}),
                                     "hello from stdin\n");
    EXPECT_EQ(result.exit_code, 3);
    EXPECT_EQ(result.output, "HELLO FROM STDIN\n");
    EXPECT_EQ(result.errors, "oops\n");
}

TEST(RunCaptured, AnInputLargerThanAPipeIsWrittenWhileTheOutputIsRead) {
    const std::string input(1 << 20, 'x');
    const auto result = run_captured(command({"cat"}), input);
    EXPECT_EQ(result.exit_code, 0);
    EXPECT_EQ(result.output.size(), input.size());
}

TEST(RunCaptured, ASignalIsReportedAsAShellDoes) {
    const auto result = run_captured(command({"sh", "-c", "kill -TERM $$"}));
    EXPECT_EQ(result.exit_code, 128 + SIGTERM);
}

TEST(ChildProcess, SaysWhyAProgramCouldNotStart) {
    const auto result = run_captured(command({"calcmesh-no-such-program"}));
    EXPECT_EQ(result.exit_code, 127);
    EXPECT_EQ(result.errors, "calcmesh-no-such-program: No such file or directory");

    ChildProcess child(command({"/nonexistent/program"}));
    EXPECT_EQ(child.start_failure(), "/nonexistent/program: No such file or directory");
    const auto status = child.wait_for(std::chrono::seconds(5));
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(WEXITSTATUS(*status), 127);
}

TEST(ChildProcess, AMissingNetworkNamespaceIsRefusedBeforeFork) {
    auto options = command({"true"});
    options.netns = "calcmesh-no-such-namespace";
    EXPECT_THROW(ChildProcess{options}, std::system_error);
}

TEST(ChildProcess, PinsToTheCpuAsked) {
    auto options = command({"sh", "-c", "grep Cpus_allowed_list /proc/self/status"});
    options.cpu = 0;
    const auto result = run_captured(options);
    EXPECT_EQ(result.exit_code, 0) << result.errors;
    EXPECT_EQ(result.output, "Cpus_allowed_list:\t0\n");
}

TEST(ChildProcess, AddsAndReplacesEnvironmentVariables) {
    ::setenv("CALCMESH_PROCESS_TEST", "parent", 1);
    auto options = command({"sh", "-c", "echo $CALCMESH_PROCESS_TEST $CALCMESH_PROCESS_ADDED"});
    options.env = {{"CALCMESH_PROCESS_TEST", "child"}, {"CALCMESH_PROCESS_ADDED", "too"}};
    EXPECT_EQ(run_captured(options).output, "child too\n");
    ::unsetenv("CALCMESH_PROCESS_TEST");
}

TEST(ChildProcess, ADetachedProcessOutlivesTheObjectThatStartedIt) {
    auto options = command({"sleep", "30"});
    options.detached = true;
    pid_t pid = 0;
    {
        ChildProcess child(options);
        EXPECT_TRUE(child.start_failure().empty());
        pid = child.release();
    }
    ASSERT_GT(pid, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(::kill(pid, 0), 0) << "the detached process is gone";
    EXPECT_EQ(::getsid(pid), pid) << "not in a session of its own";
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
}

}  // namespace
}  // namespace calcmesh
