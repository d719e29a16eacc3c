// result.h — a small value-or-error type used across Postern.
//
// Interface: Result<T> holds either a T or an Error; Result<void> only success
// or an Error. Parsers, stores and system calls return these instead of
// throwing: no exception may cross a Qt slot or reach the event loop.
// Error carries a one-line human message meant for the operator (it may name
// files, lines and keys; it never contains secrets).
#pragma once

#include <QString>
#include <optional>
#include <utility>
#include <variant>

namespace postern {

struct Error {
    QString message;
    int code = 0;  // optional classifier (errno, protocol code, ...), 0 when unused
};

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : m_v(std::move(value)) {}      // NOLINT(google-explicit-constructor)
    Result(Error error) : m_v(std::move(error)) {}  // NOLINT(google-explicit-constructor)
    static Result fail(QString message, int code = 0) { return Result(Error{std::move(message), code}); }

    bool ok() const { return std::holds_alternative<T>(m_v); }
    explicit operator bool() const { return ok(); }
    const T& value() const& { return std::get<T>(m_v); }
    T& value() & { return std::get<T>(m_v); }
    T&& value() && { return std::get<T>(std::move(m_v)); }
    const T& operator*() const& { return value(); }
    T& operator*() & { return value(); }
    const T* operator->() const { return &value(); }
    T* operator->() { return &value(); }
    const Error& error() const { return std::get<Error>(m_v); }
    QString errorMessage() const { return ok() ? QString() : error().message; }
    T valueOr(T fallback) const { return ok() ? value() : std::move(fallback); }

private:
    std::variant<T, Error> m_v;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : m_error(std::move(error)) {}  // NOLINT(google-explicit-constructor)
    static Result fail(QString message, int code = 0) { return Result(Error{std::move(message), code}); }
    bool ok() const { return !m_error.has_value(); }
    explicit operator bool() const { return ok(); }
    const Error& error() const { return *m_error; }
    QString errorMessage() const { return ok() ? QString() : m_error->message; }

private:
    std::optional<Error> m_error;
};

using Status = Result<void>;

inline Error makeError(QString message, int code = 0) {
    return Error{std::move(message), code};
}

}  // namespace postern
