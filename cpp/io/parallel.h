// A minimal parallel loop: fn(i) for i in [0, n) on up to `threads` threads (the caller's
// thread is one of them). Failures are collected per index, never thrown across threads.
#pragma once
#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>
#include <vector>

namespace weightio::io {

inline unsigned default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

template <class F>
void parallel_for(size_t n, unsigned threads, F fn, std::vector<std::exception_ptr>& errors) {
  errors.assign(n, nullptr);
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n;) {
      try {
        fn(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  threads = std::max(1u, static_cast<unsigned>(std::min<size_t>(threads, n)));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
}

}  // namespace weightio::io
