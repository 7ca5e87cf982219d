// `calcmesh up` as a user runs it: the whole system, then Ctrl-C.

#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "service_process.hpp"

namespace calcmesh::testing {
namespace {

using nlohmann::json;

/// The pids of the direct children of `pid`, from /proc.
std::set<pid_t> children_of(pid_t pid) {
    std::set<pid_t> children;
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
        std::ifstream in(task.path() / "children");
        pid_t child = 0;
        while (in >> child) {
            children.insert(child);
        }
    }
    return children;
}

bool alive(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) {
        return false;
    }
    // A zombie has ended; its parent just has not collected it.
    const auto state = line.substr(line.rfind(')') + 2, 1);
    return state != "Z";
}

TEST(Up, RunsTheWholeSystemAndStopsCleanly) {
    TempDir dir("up");
    const unsigned short submitter = free_port();
    const unsigned short help = free_port();
    const unsigned short collector = free_port();
    std::string worker_ports;
    for (int i = 0; i < 4; ++i) {
        worker_ports += (i ? "," : "") + std::to_string(free_port());
    }
    ChildProcess::Options options;
    options.argv = {bin_dir() + "/calcmesh", "up",
                    "--run-dir", (dir.path() / "run").string(),
                    "--submitter-port", std::to_string(submitter),
                    "--help-port", std::to_string(help),
                    "--collector-port", std::to_string(collector),
                    "--worker-ports", worker_ports};
    options.output_file = (dir.path() / "up.log").string();
    ChildProcess up(options);
    const auto output = [&] {
        std::ifstream in(dir.path() / "up.log");
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    ASSERT_TRUE(eventually([&] { return output().find("calcmesh is up") != std::string::npos; },
                           std::chrono::seconds(60)))
        << output();
    const auto children = children_of(up.pid());
    EXPECT_EQ(children.size(), 7u) << output();

    const std::string base = "http://127.0.0.1:";
    std::vector<std::string> job_ids;
    for (const auto& [operation, expected] : {std::pair{"addition", 13}, std::pair{"subtraction", 7},
                                              std::pair{"multiplication", 30}, std::pair{"division", 3}}) {
        const auto response = post(base + std::to_string(submitter) + "/submit",
                                   json{{"operation", operation}, {"a", 10}, {"b", 3}, {"mechanism", "http"}}.dump());
        ASSERT_EQ(response.status, 200u) << response.body;
        const auto job = json::parse(response.body);
        EXPECT_EQ(job["result"], expected);
        job_ids.push_back(job["job_id"]);
    }
    ASSERT_TRUE(eventually([&] {
        const auto records = json::parse(get(base + std::to_string(collector) + "/logs").body);
        std::set<std::string> logged;
        for (const auto& record : records) {
            logged.insert(record["job_id"].get<std::string>());
        }
        return std::all_of(job_ids.begin(), job_ids.end(), [&](const auto& id) { return logged.contains(id); });
    }));
    const auto page = get(base + std::to_string(help) + "/");
    EXPECT_EQ(page.status, 200u);
    for (const auto* worker : {"addition_worker", "subtraction_worker", "multiplication_worker", "division_worker"}) {
        EXPECT_NE(page.body.find(std::string("id=\"") + worker + "\""), std::string::npos);
    }
    EXPECT_EQ(page.body.find("unavailable</strong>"), std::string::npos);

    up.signal(SIGINT);
    const auto status = up.wait_for(std::chrono::seconds(60));
    ASSERT_TRUE(status) << output();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_wait_status(*status);
    for (const auto child : children) {
        EXPECT_FALSE(alive(child)) << "child " << child << " outlived calcmesh up";
    }
    EXPECT_NE(output().find("stopped log_collector (exited with status 0)"), std::string::npos) << output();
}

TEST(Up, StopsEverythingWhenAChildDies) {
    TempDir dir("up-crash");
    std::string worker_ports;
    for (int i = 0; i < 4; ++i) {
        worker_ports += (i ? "," : "") + std::to_string(free_port());
    }
    ChildProcess::Options options;
    options.argv = {bin_dir() + "/calcmesh", "up", "--run-dir", (dir.path() / "run").string(),
                    "--submitter-port", std::to_string(free_port()), "--help-port",
                    std::to_string(free_port()), "--collector-port", std::to_string(free_port()),
                    "--worker-ports", worker_ports};
    options.output_file = (dir.path() / "up.log").string();
    ChildProcess up(options);
    const auto output = [&] {
        std::ifstream in(dir.path() / "up.log");
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    ASSERT_TRUE(eventually([&] { return output().find("calcmesh is up") != std::string::npos; },
                           std::chrono::seconds(60)));
    const auto children = children_of(up.pid());
    ASSERT_FALSE(children.empty());
    // Kill one child the hard way, as a crash would.
    const pid_t victim = *children.begin();
    ASSERT_EQ(::kill(victim, SIGKILL), 0);
    const auto status = up.wait_for(std::chrono::seconds(60));
    ASSERT_TRUE(status);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1);
    EXPECT_NE(output().find("killed by signal 9 (Killed) unexpectedly; stopping the rest"), std::string::npos)
        << output();
    for (const auto child : children) {
        EXPECT_FALSE(alive(child)) << "child " << child << " outlived calcmesh up";
    }
}

}  // namespace
}  // namespace calcmesh::testing
