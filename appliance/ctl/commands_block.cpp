// commands_block.cpp — posternctl block list|add|remove: the temporary block list of client
// addresses that every daemon consults when it accepts a connection (core/block_list.h).
//
//   block list                            the unexpired entries: subnet, until (UTC), source
//                                         (auth: too many failed logins; admin: added here),
//                                         then "kernel set: ..." — whether the supervisor's
//                                         nftables mirror (auth.block_nftables,
//                                         core/block_nftables.h) is in use, from its status file
//   block add ADDRESS [--for DURATION]    block an address or subnet (default 1h; "30m",
//                                         "7d", ...; between 1 minute and 30 days); an
//                                         existing entry for the same subnet gets the new expiry
//   block remove ADDRESS                  unblock (exit 1 when there was no such entry)
// The daemons read the file again at their next accept: no reload needed.
// Security: runs as the daemons' user (runAsDaemonUser) before it touches <data_dir>, so
// the file and its lock stay theirs and no link planted there is followed as root.
// Limits: BlockList::kMaxEntries entries; durations BlockList::kMinDurationMs to
// kMaxDurationMs (both refused with a clear error outside them).
#include "ctl.h"

#include "core/block_list.h"

#include "core/config_schema.h"
#include "core/setting_keys.h"

#include <QDateTime>
#include <QJsonObject>

namespace postern::ctl {

namespace {

// One line on the nftables mirror: what the supervisor's status file says (ctl.h supervisorPid:
// trusted only when root wrote it), or why there is none.
QString kernelSetLine(const Config& config) {
    if (!get(config, keys::auth::blockNftables)) return QStringLiteral("off (auth.block_nftables = false)");
    QJsonObject status;
    if (supervisorPid(config, &status) <= 0)
        return QStringLiteral("NOT in use: the supervisor (postern-appliance) is not running");
    const QJsonObject o = status.value(QStringLiteral("block_nftables")).toObject();
    const QString table = o.value(QStringLiteral("table")).toString();
    if (!o.value(QStringLiteral("enabled")).toBool())
        return QStringLiteral(
            "NOT in use yet: the supervisor has not read auth.block_nftables = true "
            "(it does at its next reload)");
    const QString state = o.value(QStringLiteral("state")).toString();
    if (state == u"active")
        return QStringLiteral("in use (nftables table %1, %2 element(s), synced %3)")
            .arg(table)
            .arg(o.value(QStringLiteral("elements")).toInteger())
            .arg(o.value(QStringLiteral("synced")).toString());
    if (state == u"error")
        return QStringLiteral("NOT up to date: %1 (the kernel keeps what was applied before, if anything)")
            .arg(o.value(QStringLiteral("error")).toString());
    return QStringLiteral("being applied (nftables table %1)").arg(table);
}

int blockList(CtlContext& ctx) {
    if (!ctx.args.isEmpty()) return ctx.usage(QStringLiteral("block list"));
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    const QString kernelSet = kernelSetLine(config);
    if (!ctx.runAsDaemonUser(config)) return 1;
    BlockList list(BlockList::pathIn(config.dataDir()));
    auto entries = list.list();
    if (!entries) return ctx.fail(entries.errorMessage());
    if (entries->isEmpty()) ctx.out << "no address is blocked" << Qt::endl;
    for (const BlockList::Entry& e : std::as_const(*entries))
        ctx.out << e.subnet << "  until " << QDateTime::fromMSecsSinceEpoch(e.untilMs, Qt::UTC).toString(Qt::ISODate)
                << "  " << e.source << Qt::endl;
    ctx.out << "kernel set: " << kernelSet << Qt::endl;
    return 0;
}

int blockAdd(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("block add ADDRESS [--for DURATION]"));
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    auto duration = Schema::parseDurationMs(ctx.opt(QStringLiteral("for"), QStringLiteral("1h")));
    if (!duration) return ctx.usage(QStringLiteral("--for: %1").arg(duration.errorMessage()));
    if (!ctx.runAsDaemonUser(config)) return 1;
    BlockList list(BlockList::pathIn(config.dataDir()));
    if (auto st = list.add(ctx.args.first(), *duration, QStringLiteral("admin")); !st)
        return ctx.fail(st.errorMessage());
    const QString subnet = BlockList::parseSubnet(ctx.args.first()).valueOr(ctx.args.first());
    ctx.out << "blocked " << subnet << " until "
            << QDateTime::currentDateTimeUtc().addMSecs(*duration).toString(Qt::ISODate) << Qt::endl;
    return 0;
}

int blockRemove(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("block remove ADDRESS"));
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    if (!ctx.runAsDaemonUser(config)) return 1;
    BlockList list(BlockList::pathIn(config.dataDir()));
    auto removed = list.remove(ctx.args.first());
    if (!removed) return ctx.fail(removed.errorMessage());
    if (!*removed) return ctx.fail(QStringLiteral("%1 is not on the block list").arg(ctx.args.first()));
    ctx.out << "unblocked " << BlockList::parseSubnet(ctx.args.first()).valueOr(ctx.args.first()) << Qt::endl;
    return 0;
}

}  // namespace

void addBlockCommands(QList<Command>& out) {
    const QString b = QStringLiteral("block");
    out << Command{
        {b, QStringLiteral("list")},
        QString(),
        QStringLiteral("addresses refused at connect (failed logins, or added here); whether the kernel drops them"),
        {},
        {},
        blockList};
    out << Command{{b, QStringLiteral("add")},
                   QStringLiteral("ADDRESS [--for DURATION]"),
                   QStringLiteral("refuse an address or subnet at connect, for a while (default 1h, at most 30d)"),
                   {QStringLiteral("for")},
                   {},
                   blockAdd};
    out << Command{{b, QStringLiteral("remove")},
                   QStringLiteral("ADDRESS"),
                   QStringLiteral("take an address off the block list"),
                   {},
                   {},
                   blockRemove};
}

}  // namespace postern::ctl
