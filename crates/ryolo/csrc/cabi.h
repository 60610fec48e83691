// Shared by ryolo's C ABI shims: C++ exceptions become malloc'd messages (freed by the caller
// with ryolo_dist_free_str / free), so no exception crosses into Rust.
#pragma once

#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

namespace ryolo {

// A malloc'd copy of `s` (null when out of memory).
inline char* dup(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p != nullptr) {
    std::memcpy(p, s.data(), s.size());
    p[s.size()] = '\0';
  }
  return p;
}

// Runs f; on a C++ exception stores its message in *err and returns false.
template <typename F>
bool guarded(char** err, F&& f) {
  try {
    f();
    return true;
  } catch (const c10::Error& e) {
    *err = dup(e.what_without_backtrace());
  } catch (const std::exception& e) {
    *err = dup(e.what());
  } catch (...) {
    *err = dup("unknown C++ exception");
  }
  return false;
}

}  // namespace ryolo
