#include "util/interrupt.h"

#include <spdlog/spdlog.h>

#include <pthread.h>
#include <atomic>
#include <csignal>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace kbuild {
namespace {

std::atomic<bool> g_interrupted{false};
std::mutex g_mutex;
std::map<int, std::function<void()>> g_cleanups;
int g_next_handle = 0;

}  // namespace

void install_interrupt_handling() {
    static std::once_flag once;
    std::call_once(once, [] {
        sigset_t signals;
        sigemptyset(&signals);
        sigaddset(&signals, SIGINT);
        sigaddset(&signals, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &signals, nullptr);
        std::thread([signals] {
            int signal = 0;
            sigwait(&signals, &signal);
            g_interrupted = true;
            // The default logger taken under the registry's lock, and kept: spdlog::warn reads
            // its raw pointer unlocked, which spdlog forbids while setup_logging() may replace
            // it (a signal at start), and only the lock orders this thread after the logger
            // setup_logging() made (TSan found the race).
            const std::shared_ptr<spdlog::logger> log = spdlog::default_logger();
            log->warn("interrupted: stopping this run's builds");
            std::map<int, std::function<void()>> cleanups;
            {
                std::lock_guard lock(g_mutex);
                cleanups = g_cleanups;
            }
            for (const auto& [handle, cleanup] : cleanups) {
                try {
                    cleanup();
                } catch (const std::exception& e) {
                    log->error("{}", e.what());
                }
            }
            std::_Exit(128 + signal);
        }).detach();
    });
}

int add_cleanup(std::function<void()> cleanup) {
    std::lock_guard lock(g_mutex);
    g_cleanups.emplace(g_next_handle, std::move(cleanup));
    return g_next_handle++;
}

void remove_cleanup(int handle) {
    std::lock_guard lock(g_mutex);
    g_cleanups.erase(handle);
}

bool interrupted() {
    return g_interrupted;
}

void stop_here_if_interrupted() {
    if (!g_interrupted) return;
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

}  // namespace kbuild
