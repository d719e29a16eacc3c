// sieve_forms.h — the two simple forms most users want, forwarding and a vacation
// reply, as generated Sieve scripts: one implementation used by `posternctl sieve
// forward|vacation` (appliance/ctl/commands_sieve.cpp) and by the web panel's
// Forwarding page (daemons/webd/panel_user_pages.cpp).
//
// Interface:
//   forwardingScript(targets, keep, today)
//       `redirect` to each address (normalised, duplicates dropped); keep: `:copy`
//       (RFC 3894), so a copy stays in the mailbox. Error for an address that is not
//       one, none at all, or more than Limits::maxRedirects.
//   vacationScript(form, today)
//       `vacation :days N [:subject S] text:...` (RFC 5230); with a start and/or end date
//       wrapped in `currentdate :value "ge"/"le" "date" ...` (RFC 5260, RFC 5231). Error
//       for an empty text, a date that is not YYYY-MM-DD, an end before the start, days
//       outside 1..kMaxVacationDays.
//   installGeneratedScript(mailDir, address, name, script, quota)
//       stores it (sieve_store.h putScript: compiled first, within the user's quota,
//       Quota::fromConfig: the same limits as ManageSieve) and makes it the active
//       script at once; the previously active script stays stored, inactive.
//   kForwardScriptName ("forward"), kVacationScriptName ("vacation"): the names the forms
//       use, so the panel can tell whether the active script is one of its own.
// Both scripts start with a comment naming what made them and that the user may edit
// them (ManageSieve or posternctl sieve show/put); they compile (tested).
// Security: the values go into quoted strings (", \ escaped) or a dot-stuffed
// multi-line string (RFC 5228 2.4.2), so no value can add a command. CR and LF in the
// subject are refused (a header value); NUL anywhere is refused.
// Limits: Limits::maxRedirects (4) addresses; kMaxVacationDays (365);
// kMaxVacationTextBytes (32 KiB) of text (dot-stuffing may add half of it: still under
// the parser's 64 KiB per string); kMaxVacationSubjectBytes (998, a header line).
// Standards: RFC 5228, 3894 (copy), 5230 (vacation), 5260 (date), 5231 (relational).
#pragma once

#include "core/result.h"
#include "sieve_store.h"

#include <QDate>
#include <QStringList>

namespace postern::sieve {

inline constexpr int kMaxVacationDays = 365;
inline constexpr int kDefaultVacationDays = 7;
inline constexpr qsizetype kMaxVacationTextBytes =
    32 * 1024;  // dot-stuffed, still under the parser's 64 KiB string limit
inline constexpr qsizetype kMaxVacationSubjectBytes = 998;
inline constexpr char kForwardScriptName[] = "forward";
inline constexpr char kVacationScriptName[] = "vacation";

struct VacationForm {
    QString subject;  // empty: the RFC 5230 default ("Auto: " + the original subject)
    QString text;
    QString from;   // YYYY-MM-DD or empty
    QString until;  // YYYY-MM-DD or empty
    int days = kDefaultVacationDays;
};

Result<QByteArray> forwardingScript(const QStringList& targets, bool keep, const QDate& today);
Result<QByteArray> vacationScript(const VacationForm& form, const QDate& today);
Status installGeneratedScript(const QString& mailDir, const QString& address, const QString& name,
                              const QByteArray& script, const Quota& quota);

}  // namespace postern::sieve
