// tst_sieve.cpp — the Sieve language (common/sieve/sieve.h): the RFCs' examples
// (re-written from the RFC text, each with a message and the expected actions),
// parse and validation errors with line:column, runtime errors falling back to
// keep, and every limit at its boundary.
#include "common/sieve/sieve.h"

#include <QtTest>

using Scripts = QMap<QString, QByteArray>;  // include tests: name -> source ("g:" for :global)
Q_DECLARE_METATYPE(Scripts)

using namespace postern::sieve;

namespace {

const QByteArray kMessage =
    "Date: Tue, 1 Apr 1997 09:06:31 -0800\r\n"
    "From: coyote@desert.example.org\r\n"
    "To: roadrunner@acme.example.com\r\n"
    "Cc: \"Road Runner\" <roadrunner+fans@acme.example.com>, elmer@hunters.example.org\r\n"
    "Subject: I have a present for you\r\n"
    "X-Caffeine: C8H10N4O2\r\n"
    "X-Priority: 3\r\n"
    "List-ID: Acme users <acme-users.lists.example.com>\r\n";
const QByteArray kBody =
    "Look, I'm sorry about the whole anvil thing, and I really\r\n"
    "didn't mean to try and drop it on you from the top of the\r\n"
    "cliff.  I want to try to make it up to you.  I've got some\r\n"
    "great birdseed over here at my place--top of the line\r\n"
    "stuff--and if you come by, I'll have it all wrapped up\r\n"
    "for you.  I'm really sorry for all the problems I've caused.\r\n"
    "Hope this helps.\r\n";

Message message(const QByteArray& header = kMessage, const QByteArray& body = kBody) {
    Message m;
    m.header = header;
    m.body = body;
    m.size = header.size() + 2 + body.size();
    m.envelopeFrom = QStringLiteral("coyote@desert.example.org");
    m.envelopeTo = QStringLiteral("roadrunner+birdseed@acme.example.com");
    m.now = QDateTime(QDate(2026, 12, 3), QTime(3, 45, 7), Qt::OffsetFromUTC, 3600);
    m.mailboxExists = [](const QString& name) { return name == u"Existing"; };
    return m;
}

QString actions(const Outcome& o) {
    QStringList out;
    for (const Action& a : o.actions) out << describe(a);
    return out.join(QStringLiteral("; "));
}

QString runScript(const QByteArray& script, const Message& m, const Limits& limits = {}) {
    auto s = compile(script, limits);
    if (!s) return QStringLiteral("compile error: ") + s.errorMessage();
    const Outcome o = run(*s, m, limits);
    if (o.error) return QStringLiteral("runtime error: ") + o.error->message + QStringLiteral(" -> ") + actions(o);
    return actions(o);
}

}  // namespace

class TestSieve : public QObject {
    Q_OBJECT
private slots:
    void examples_data();
    void examples();
    void parseErrors_data();
    void parseErrors();
    void prefixesNeverCrash();
    void lexical_data();
    void lexical();
    void runtimeErrorFallsBackToKeep();
    void limits();
    void headerDecoding();
    void include_data();
    void include();
    void includeLimits();
    void includeSequence();
};

void TestSieve::examples_data() {
    QTest::addColumn<QByteArray>("script");
    QTest::addColumn<QByteArray>("header");
    QTest::addColumn<QString>("expected");
    const QByteArray h = kMessage;
    // RFC 5228 core
    QTest::newRow("5228: empty script keeps") << QByteArray() << h << "implicit keep";
    QTest::newRow("5228 4.3: discard") << QByteArray("discard;") << h << "discard";
    QTest::newRow("5228 4.2: redirect cancels keep")
        << QByteArray("redirect \"bart@example.com\";") << h << "redirect \"bart@example.com\"";
    QTest::newRow("5228 4.2: same redirect twice once")
        << QByteArray("redirect \"a@example.com\"; redirect \"A@example.com\";") << h << "redirect \"a@example.com\"";
    QTest::newRow("5228 5.7: header :contains")
        << QByteArray("if header :contains [\"from\",\"cc\"] \"elmer\" { discard; }") << h << "discard";
    QTest::newRow("5228 5.7: header :is trims and casemaps")
        << QByteArray("if header :is \"subject\" \"I HAVE A PRESENT FOR YOU\" { discard; }") << h << "discard";
    QTest::newRow("5228: i;octet is case-sensitive")
        << QByteArray("if header :comparator \"i;octet\" :is \"subject\" \"I HAVE A PRESENT FOR YOU\" { discard; }")
        << h << "implicit keep";
    QTest::newRow("5228 2.7.1: :matches wildcards")
        << QByteArray("if header :matches \"X-Caffeine\" \"C?H*N4O2\" { discard; }") << h << "discard";
    QTest::newRow("5228 2.7.1: :matches escaped star")
        << QByteArray("if header :matches \"Subject\" \"I have\\\\*\" { discard; }") << h << "implicit keep";
    QTest::newRow("5228 5.1: address :domain")
        << QByteArray("if address :domain :is \"from\" \"DESERT.example.org\" { discard; }") << h << "discard";
    QTest::newRow("5228 5.1: address :localpart of Cc")
        << QByteArray("if address :localpart :is \"cc\" \"elmer\" { discard; }") << h << "discard";
    QTest::newRow("5228 5.1: address :all")
        << QByteArray("if address :all :is \"to\" \"roadrunner@acme.example.com\" { discard; }") << h << "discard";
    QTest::newRow("5228 5.5: exists") << QByteArray("if exists [\"From\",\"Date\"] { discard; }") << h << "discard";
    QTest::newRow("5228 5.5: exists all or nothing")
        << QByteArray("if exists [\"From\",\"X-Nope\"] { discard; }") << h << "implicit keep";
    QTest::newRow("5228 5.9: size :over") << QByteArray("if size :over 100 { discard; }") << h << "discard";
    QTest::newRow("5228 5.9: size :under") << QByteArray("if size :under 100 { discard; }") << h << "implicit keep";
    QTest::newRow("5228 5.9: size :under 1K") << QByteArray("if size :under 1K { discard; }") << h << "discard";
    QTest::newRow("5228 5.8: not") << QByteArray("if not exists \"X-Nope\" { discard; }") << h << "discard";
    QTest::newRow("5228 5.2: allof")
        << QByteArray("if allof (exists \"From\", header :contains \"Subject\" \"present\") { discard; }") << h
        << "discard";
    QTest::newRow("5228 5.3: anyof") << QByteArray("if anyof (false, true) { discard; }") << h << "discard";
    QTest::newRow("5228 3.1: elsif/else")
        << QByteArray("if false { discard; } elsif false { discard; } else { keep; }") << h << "keep";
    QTest::newRow("5228 3.1: chain stops at the first true")
        << QByteArray(
               "require \"fileinto\"; if header :contains \"subject\" \"present\" { fileinto \"A\"; } elsif true { "
               "fileinto \"B\"; } else { fileinto \"C\"; }")
        << h << "fileinto \"A\"";
    QTest::newRow("5228 3.3: stop") << QByteArray("require \"fileinto\"; fileinto \"A\"; stop; fileinto \"B\";") << h
                                    << "fileinto \"A\"";
    QTest::newRow("5228 4.1: fileinto twice, one copy")
        << QByteArray("require \"fileinto\"; fileinto \"A\"; fileinto \"A\";") << h << "fileinto \"A\"";
    QTest::newRow("5228 4.1: fileinto INBOX is keep")
        << QByteArray("require \"fileinto\"; fileinto \"inbox\"; keep;") << h << "keep";
    QTest::newRow("5228 9: the example script")
        << QByteArray(
               "# Declare any optional features or extension used by the script\r\n"
               "require [\"fileinto\"];\r\n"
               "if header :is \"Sender\" \"owner-ietf-mtg@ietf.org\" { fileinto \"ietf\"; }\r\n"
               "elsif address :DOMAIN :is [\"From\", \"To\"] \"example.com\" { keep; }\r\n"
               "elsif anyof (NOT address :all :contains [\"To\", \"Cc\", \"Bcc\"] \"me@example.com\",\r\n"
               "             header :matches \"subject\" [\"*make*money*fast*\", \"*university*dipl*mas*\"]) {\r\n"
               "    fileinto \"spam\";\r\n"
               "} else { fileinto \"personal\"; }\r\n")
        << h << "fileinto \"spam\"";
    // RFC 5228 5.4 / envelope
    QTest::newRow("5228 5.4: envelope :localpart")
        << QByteArray("require \"envelope\"; if envelope :all :is \"from\" \"coyote@desert.example.org\" { discard; }")
        << h << "discard";
    QTest::newRow("5228 5.4: envelope to :domain")
        << QByteArray("require \"envelope\"; if envelope :domain :is \"to\" \"acme.example.com\" { discard; }") << h
        << "discard";
    // RFC 5233 subaddress
    QTest::newRow("5233: envelope :detail") << QByteArray(
                                                   "require [\"envelope\",\"subaddress\",\"fileinto\"]; if envelope "
                                                   ":detail \"to\" \"birdseed\" { fileinto \"seed\"; }")
                                            << h << "fileinto \"seed\"";
    QTest::newRow("5233: :user strips the detail") << QByteArray(
                                                          "require [\"envelope\",\"subaddress\",\"fileinto\"]; if "
                                                          "envelope :user \"to\" \"roadrunner\" { fileinto \"rr\"; }")
                                                   << h << "fileinto \"rr\"";
    QTest::newRow("5233: address :detail of Cc")
        << QByteArray("require \"subaddress\"; if address :detail \"cc\" \"fans\" { discard; }") << h << "discard";
    QTest::newRow("5233: no detail, no match")
        << QByteArray("require \"subaddress\"; if address :detail :matches \"to\" \"*\" { discard; }") << h
        << "implicit keep";
    // RFC 5232 imap4flags
    QTest::newRow("5232: addflag then implicit keep")
        << QByteArray("require \"imap4flags\"; addflag \"\\\\Flagged\";") << h << "implicit keep flags=\\Flagged";
    QTest::newRow("5232: setflag/addflag/removeflag")
        << QByteArray(
               "require \"imap4flags\"; setflag [\"\\\\Seen\", \"$A\"]; addflag \"$B \\\\seen\"; removeflag \"$a\";")
        << h << "implicit keep flags=\\Seen $B";
    QTest::newRow("5232: fileinto :flags") << QByteArray(
                                                  "require [\"imap4flags\",\"fileinto\"]; addflag \"\\\\Seen\"; "
                                                  "fileinto :flags \"\\\\Deleted\" \"Trash\"; fileinto \"Work\";")
                                           << h << "fileinto \"Trash\" flags=\\Deleted; fileinto \"Work\" flags=\\Seen";
    QTest::newRow("5232: hasflag")
        << QByteArray("require \"imap4flags\"; addflag \"\\\\Answered\"; if hasflag :is \"\\\\answered\" { discard; }")
        << h << "discard";
    QTest::newRow("5232: flags in a variable")
        << QByteArray(
               "require [\"imap4flags\",\"variables\",\"relational\",\"comparator-i;ascii-numeric\"]; setflag \"f\" "
               "\"$x\"; addflag \"f\" \"$y\"; if hasflag :count \"eq\" :comparator \"i;ascii-numeric\" \"f\" \"2\" { "
               "discard; }")
        << h << "discard";
    QTest::newRow("5232: keep :flags") << QByteArray("require \"imap4flags\"; keep :flags \"\\\\Flagged\";") << h
                                       << "keep flags=\\Flagged";
    // RFC 3894 copy
    QTest::newRow("3894: redirect :copy keeps") << QByteArray("require \"copy\"; redirect :copy \"x@example.com\";")
                                                << h << "redirect \"x@example.com\" copy; implicit keep";
    QTest::newRow("3894: fileinto :copy keeps")
        << QByteArray("require [\"copy\",\"fileinto\"]; fileinto :copy \"Archive\";") << h
        << "fileinto \"Archive\" copy; implicit keep";
    // RFC 5490 mailbox
    QTest::newRow("5490: fileinto :create")
        << QByteArray("require [\"fileinto\",\"mailbox\"]; fileinto :create \"New/Folder\";") << h
        << "fileinto \"New/Folder\" create";
    QTest::newRow("5490: mailboxexists") << QByteArray(
                                                "require [\"fileinto\",\"mailbox\"]; if mailboxexists \"Existing\" { "
                                                "fileinto \"Existing\"; } if mailboxexists \"Nope\" { discard; }")
                                         << h << "fileinto \"Existing\"";
    // RFC 5429 reject
    QTest::newRow("5429: reject")
        << QByteArray(
               "require \"reject\"; if header :contains \"from\" \"coyote\" { reject text:\r\nGo away.\r\n.\r\n; }")
        << h << "reject \"Go away.\r\n\"";
    QTest::newRow("5429: ereject") << QByteArray("require \"ereject\"; ereject \"no\";") << h << "ereject \"no\"";
    // RFC 5229 variables
    QTest::newRow("5229 3.2: match variables")
        << QByteArray(
               "require [\"fileinto\", \"variables\"];\r\n"
               "if header :matches \"List-ID\" \"*<*.lists.example.com>\" { fileinto \"lists/${2}\"; stop; }")
        << h << "fileinto \"lists/acme-users\"";
    QTest::newRow("5229 3.2: shortest match for all but the last star")
        << QByteArray(
               "require [\"fileinto\", \"variables\"]; if header :matches \"Subject\" \"* * *\" { fileinto "
               "\"${1}|${2}|${3}\"; }")
        << h << "fileinto \"I|have|a present for you\"";
    QTest::newRow("5229 4: set modifiers")
        << QByteArray(
               "require [\"variables\",\"fileinto\"]; set :upperfirst \"a\" \"juMBlEd\"; set :lower :upperfirst \"b\" "
               "\"juMBlEd\"; set :length \"c\" \"${a}\";"
               " set :quotewildcard \"d\" \"a*b?\"; fileinto \"${a}.${b}.${c}.${d}\";")
        << h << "fileinto \"JuMBlEd.Jumbled.7.a\\*b\\?\"";
    QTest::newRow("5229 5: string test") << QByteArray(
                                                "require \"variables\"; set \"state\" \"${state} pending\"; if string "
                                                ":matches \" ${state} \" \"* pending *\" { discard; }")
                                         << h << "discard";
    QTest::newRow("5229 3: unknown variable is empty")
        << QByteArray("require [\"variables\",\"fileinto\"]; fileinto \"x${nope}y\";") << h << "fileinto \"xy\"";
    QTest::newRow("5229: no expansion without require")
        << QByteArray("require \"fileinto\"; fileinto \"x${nope}y\";") << h << "fileinto \"x${nope}y\"";
    // RFC 5231 relational
    QTest::newRow("5231: :count of addresses")
        << QByteArray(
               "require [\"relational\",\"comparator-i;ascii-numeric\"]; if address :count \"ge\" :comparator "
               "\"i;ascii-numeric\" [\"to\", \"cc\"] \"3\" { discard; }")
        << h << "discard";
    QTest::newRow("5231: :value gt numeric")
        << QByteArray(
               "require [\"relational\",\"comparator-i;ascii-numeric\"]; if header :value \"gt\" :comparator "
               "\"i;ascii-numeric\" \"x-priority\" \"2\" { discard; }")
        << h << "discard";
    QTest::newRow("5231: :value lt casemap")
        << QByteArray("require \"relational\"; if header :value \"lt\" \"subject\" \"J\" { discard; }") << h
        << "discard";
    // RFC 5173 body
    QTest::newRow("5173: body :contains")
        << QByteArray("require \"body\"; if body :contains \"birdseed\" { discard; }") << h << "discard";
    QTest::newRow("5173: body :raw") << QByteArray(
                                            "require \"body\"; if body :raw :contains \"Hope this helps\" { discard; }")
                                     << h << "discard";
    QTest::newRow("5173: body :content image")
        << QByteArray("require \"body\"; if body :content \"image\" :contains \"\" { discard; }") << h
        << "implicit keep";
    // RFC 5260 date
    QTest::newRow("5260: date year originalzone")
        << QByteArray("require \"date\"; if date :originalzone :is \"date\" \"year\" \"1997\" { discard; }") << h
        << "discard";
    QTest::newRow("5260: date hour in +0000")
        << QByteArray("require \"date\"; if date :zone \"+0000\" :is \"date\" \"hour\" \"17\" { discard; }") << h
        << "discard";
    QTest::newRow("5260: date weekday")
        << QByteArray("require \"date\"; if date :originalzone :is \"date\" \"weekday\" \"2\" { discard; }") << h
        << "discard";
    QTest::newRow("5260: currentdate iso8601")
        << QByteArray(
               "require [\"date\",\"variables\",\"fileinto\"]; if currentdate :zone \"+0100\" :matches \"iso8601\" "
               "\"*\" { fileinto \"${1}\"; }")
        << h << "fileinto \"2026-12-03T03:45:07+01:00\"";
    QTest::newRow("5260: currentdate relational range")
        << QByteArray(
               "require [\"date\",\"relational\"]; if allof(currentdate :value \"ge\" \"date\" \"2026-12-01\", "
               "currentdate :value \"le\" \"date\" \"2026-12-31\") { discard; }")
        << h << "discard";
    // RFC 5230 / 6131 vacation
    // RFC 5260 6: index (Received fields are added at the top, so :last 1 is the oldest)
    const QByteArray rcv =
        "Received: from mx.example.org by hop3.example.com; Tue, 1 Apr 1997 12:00:00 -0500\r\n"
        "Received: from relay.example.net by hop2.example.org; Tue, 1 Apr 1997 11:00:00 -0500\r\n"
        "Received: from client.example.net by hop1.example.net; Tue, 1 Apr 1997 10:00:00 -0500\r\n"
        "From: coyote@desert.example.org\r\n"
        "To: a@example.com, b@example.com\r\n"
        "To: c@example.com\r\n";
    QTest::newRow("5260 6: date :index 1 :zone received")
        << QByteArray(
               "require [\"date\", \"relational\", \"index\"];\n"
               "if date :value \"ge\" :index 1 :zone \"-0500\" \"received\" \"iso8601\" \"1997-04-01T12:00:00-05:00\"\n"
               "{ discard; }")
        << rcv << "discard";
    QTest::newRow("5260 6: date :index 2 :last is the middle hop")
        << QByteArray(
               "require [\"date\", \"index\"];\n"
               "if date :index 2 :last :zone \"-0500\" \"received\" \"hour\" \"11\" { discard; }")
        << rcv << "discard";
    QTest::newRow("5260 6: header :index 1 :last is the oldest")
        << QByteArray("require \"index\"; if header :contains :index 1 :last \"Received\" \"hop1\" { discard; }") << rcv
        << "discard";
    QTest::newRow("5260 6: header :index 1 is not the oldest")
        << QByteArray("require \"index\"; if header :contains :index 1 \"Received\" \"hop1\" { discard; }") << rcv
        << "implicit keep";
    QTest::newRow("5260 6: header :index 3 is the last of three")
        << QByteArray("require \"index\"; if header :contains :index 3 \"Received\" \"hop1\" { discard; }") << rcv
        << "discard";
    QTest::newRow("5260 6: :index beyond the fields matches nothing")
        << QByteArray("require \"index\"; if header :contains :index 4 \"Received\" \"hop\" { discard; }") << rcv
        << "implicit keep";
    QTest::newRow("5260 6: :index beyond the fields from the end")
        << QByteArray("require \"index\"; if header :contains :index 4 :last \"Received\" \"hop\" { discard; }") << rcv
        << "implicit keep";
    QTest::newRow("5260 6: address :index selects the field, not the address")
        << QByteArray(
               "require [\"index\", \"relational\", \"comparator-i;ascii-numeric\"];\n"
               "if address :count \"eq\" :comparator \"i;ascii-numeric\" :index 1 \"To\" \"2\" { discard; }")
        << rcv << "discard";
    QTest::newRow("5260 6: address :index 2 :domain")
        << QByteArray("require \"index\"; if address :localpart :index 2 \"To\" \"c\" { discard; }") << rcv
        << "discard";
    QTest::newRow("5230: vacation defaults") << QByteArray("require \"vacation\"; vacation \"I'm away\";") << h
                                             << "vacation period=604800 \"I'm away\"; implicit keep";
    QTest::newRow("5230: vacation tags")
        << QByteArray(
               "require \"vacation\"; vacation :days 3 :subject \"Away\" :from \"rr@example.com\" :addresses "
               "[\"a@example.com\"] :handle \"h\" \"Back soon\";")
        << h
        << "vacation period=259200 subject=\"Away\" from=\"rr@example.com\" addresses=a@example.com handle=\"h\" "
           "\"Back soon\"; implicit keep";
    QTest::newRow("6131: vacation :seconds")
        << QByteArray("require [\"vacation\",\"vacation-seconds\"]; vacation :seconds 60 \"x\";") << h
        << "vacation period=60 \"x\"; implicit keep";
    // RFC 5228 2.4.2.4 encoded-character
    QTest::newRow("5228 2.4.2.4: encoded-character")
        << QByteArray(
               "require [\"encoded-character\",\"fileinto\"]; fileinto \"${hex: 61 62}-${unicode:263A}-${hex:zz}\";")
        << h << QString::fromUtf8("fileinto \"ab-\xe2\x98\xba-${hex:zz}\"");
    QTest::newRow("5228 2.4.2.4: not decoded without require")
        << QByteArray("require \"fileinto\"; fileinto \"${hex:61}\";") << h << "fileinto \"${hex:61}\"";
}

void TestSieve::examples() {
    QFETCH(QByteArray, script);
    QFETCH(QByteArray, header);
    QFETCH(QString, expected);
    QCOMPARE(runScript(script, message(header)), expected);
}

void TestSieve::parseErrors_data() {
    QTest::addColumn<QByteArray>("script");
    QTest::addColumn<QString>("error");
    QTest::newRow("missing semicolon") << QByteArray("keep\r\ndiscard;") << "2:1: keep takes no test";
    QTest::newRow("missing semicolon before a block")
        << QByteArray("keep;\ndiscard {") << "2:10: expected a command or '}', found end of script";
    QTest::newRow("unterminated string") << QByteArray("require \"fileinto;\n") << "1:9: string not closed with '\"'";
    QTest::newRow("unterminated comment") << QByteArray("keep; /* x\n") << "1:7: comment not closed with */";
    QTest::newRow("unterminated text:") << QByteArray("require \"reject\";\nreject text:\nabc\n")
                                        << "2:8: multi-line string not ended with a line holding only '.'";
    QTest::newRow("garbage after text:") << QByteArray("reject text: x\n.\n;")
                                         << "1:14: expected a line end after text:";
    QTest::newRow("unknown command") << QByteArray("keep;\n  frobnicate;") << "2:3: unknown command \"frobnicate\"";
    QTest::newRow("unknown test") << QByteArray("if frob { keep; }") << "1:4: unknown test \"frob\"";
    QTest::newRow("test as command") << QByteArray("true;") << "1:1: \"true\" is a test, not a command";
    QTest::newRow("unknown extension") << QByteArray("require [\"fileinto\", \"x-unknown\"];")
                                       << "1:22: unsupported extension \"x-unknown\"";
    QTest::newRow("not required") << QByteArray("fileinto \"x\";")
                                  << "1:1: command \"fileinto\" needs require \"fileinto\"";
    QTest::newRow("tag not required") << QByteArray("require \"fileinto\";\nfileinto :copy \"x\";")
                                      << "2:10: tag :copy needs require \"copy\"";
    QTest::newRow("require late") << QByteArray("keep;\nrequire \"fileinto\";")
                                  << "2:1: require must come before any other command";
    QTest::newRow("elsif alone") << QByteArray("elsif true { keep; }") << "1:1: elsif without a preceding if";
    QTest::newRow("if without block") << QByteArray("if true;") << "1:1: if needs a block { ... }";
    QTest::newRow("keep with block") << QByteArray("keep { }") << "1:1: keep takes no block";
    QTest::newRow("two match types") << QByteArray("if header :is :contains \"a\" \"b\" { }")
                                     << "1:15: :contains cannot be combined with :is";
    QTest::newRow("unknown tag") << QByteArray("if header :over \"a\" \"b\" { }")
                                 << "1:11: unknown tag :over for header";
    QTest::newRow("wrong argument count")
        << QByteArray("if header \"a\" { }") << "1:4: header takes 2 argument(s), found 1";
    QTest::newRow("list where string") << QByteArray("redirect [\"a@b\"];") << "1:10: redirect: expected a string";
    QTest::newRow("unknown comparator") << QByteArray("if header :comparator \"i;foo\" \"a\" \"b\" { }")
                                        << "1:23: unknown comparator \"i;foo\"";
    QTest::newRow("numeric without require")
        << QByteArray("if header :comparator \"i;ascii-numeric\" \"a\" \"1\" { }")
        << "1:23: comparator i;ascii-numeric needs require \"comparator-i;ascii-numeric\"";
    QTest::newRow("numeric :contains") << QByteArray(
                                              "require \"comparator-i;ascii-numeric\";\nif header :contains "
                                              ":comparator \"i;ascii-numeric\" \"a\" \"1\" { }")
                                       << "2:33: comparator i;ascii-numeric supports no substring match";
    QTest::newRow("bad relation") << QByteArray("require \"relational\"; if header :value \"xx\" \"a\" \"b\" { }")
                                  << "1:40: unknown relational operator \"xx\"";
    QTest::newRow("bad date part") << QByteArray("require \"date\"; if currentdate \"era\" \"x\" { }")
                                   << "1:32: unknown date part \"era\"";
    QTest::newRow("bad zone") << QByteArray("require \"date\"; if currentdate :zone \"CET\" \"year\" \"x\" { }")
                              << "1:38: zone must look like +hhmm or -hhmm";
    QTest::newRow("bad variable name") << QByteArray("require \"variables\"; set \"1a\" \"x\";")
                                       << "1:26: invalid variable name \"1a\"";
    QTest::newRow("index not required") << QByteArray("if header :index 1 \"a\" \"b\" { }")
                                        << "1:11: tag :index needs require \"index\"";
    QTest::newRow("index 0") << QByteArray("require \"index\"; if header :index 0 \"a\" \"b\" { }")
                             << "1:35: :index counts from 1";
    QTest::newRow("last without index") << QByteArray("require \"index\"; if header :last \"a\" \"b\" { }")
                                        << "1:28: :last needs :index";
    QTest::newRow("index without number")
        << QByteArray("require \"index\"; if header :index \"a\" \"b\" { }") << "1:28: tag :index needs a number";
    QTest::newRow("index on exists") << QByteArray("require \"index\"; if exists :index 1 \"a\" { }")
                                     << "1:28: unknown tag :index for exists";
    QTest::newRow("size without :over") << QByteArray("if size 10 { }") << "1:4: size needs :over or :under";
    QTest::newRow("number too large") << QByteArray("if size :over 99999999999999999999 { }")
                                      << "1:15: number too large";
    QTest::newRow("number overflows with G") << QByteArray("if size :over 9999999999G { }") << "1:15: number too large";
    QTest::newRow("tag without name") << QByteArray("if header : \"a\" \"b\" { }")
                                      << "1:11: a tag needs a name after ':'";
    QTest::newRow("bad character") << QByteArray("keep; @") << "1:7: unexpected character '@'";
    QTest::newRow("unclosed block") << QByteArray("if true {\nkeep;\n")
                                    << "3:1: expected a command or '}', found end of script";
    QTest::newRow("empty test list") << QByteArray("if anyof () { }") << "1:11: expected a test, found ')'";
    QTest::newRow("tag after positional")
        << QByteArray("if header \"a\" :is \"b\" { }") << "1:15: tag :is after a positional argument";
    QTest::newRow("flags variable without variables")
        << QByteArray("require \"imap4flags\"; setflag \"v\" \"\\\\Seen\";")
        << "1:31: setflag with a variable name needs require \"variables\"";
}

void TestSieve::parseErrors() {
    QFETCH(QByteArray, script);
    QFETCH(QString, error);
    auto s = compile(script);
    QVERIFY(!s);
    QCOMPARE(s.errorMessage(), error);
    QCOMPARE(s.error().code, error.section(u':', 0, 0).toInt());
}

// Every prefix of a script, fed one byte more at a time, either compiles or gives a
// positioned error: never a crash, never an error without line:column.
void TestSieve::prefixesNeverCrash() {
    const QByteArray script =
        "require [\"fileinto\", \"variables\", \"imap4flags\", \"relational\", \"date\"];\r\n"
        "# comment\r\n/* block\r\ncomment */\r\n"
        "if anyof (header :matches \"Subject\" \"*money*\", not exists \"X\") { set \"a\" "
        "text:\r\nline\r\n..dot\r\n.\r\n; fileinto :flags \"\\\\Seen\" \"${a}\"; }\r\n"
        "elsif currentdate :value \"ge\" \"year\" \"2020\" { stop; } else { keep; }\r\n";
    for (qsizetype n = 0; n <= script.size(); ++n) {
        auto s = compile(script.left(n));
        if (!s)
            QVERIFY2(s.errorMessage().contains(QRegularExpression(QStringLiteral("^\\d+:\\d+: "))),
                     qPrintable(s.errorMessage()));
        else
            (void)run(*s, message());
    }
    QVERIFY(compile(script).ok());
}

void TestSieve::lexical_data() {
    QTest::addColumn<QByteArray>("script");
    QTest::addColumn<QString>("expected");
    QTest::newRow("escapes in quoted strings")
        << QByteArray("require \"fileinto\"; fileinto \"a\\\"b\\\\c\\d\";") << "fileinto \"a\"b\\cd\"";
    QTest::newRow("multi-line with dot-stuffing and comment")
        << QByteArray("require \"fileinto\"; fileinto text: # comment\n..x\ny\n.\n;") << "fileinto \".x\r\ny\r\n\"";
    QTest::newRow("bare LF and CRLF mixed")
        << QByteArray("require \"fileinto\";\r\nfileinto\n\"x\";\r\n") << "fileinto \"x\"";
    QTest::newRow("numbers with K M G") << QByteArray(
                                               "if allof(size :under 1G, size :under 1M, size :over 0K) { discard; }")
                                        << "discard";
    QTest::newRow("identifiers are case-insensitive")
        << QByteArray("REQUIRE \"FileInto\"; IF TRUE { FILEINTO \"x\"; }") << "fileinto \"x\"";
    QTest::newRow("empty block") << QByteArray("if true { }") << "implicit keep";
    QTest::newRow("utf-8 mailbox") << QByteArray("require \"fileinto\"; fileinto \"\xc3\xa9t\xc3\xa9\";")
                                   << QString::fromUtf8("fileinto \"\xc3\xa9t\xc3\xa9\"");
}

void TestSieve::lexical() {
    QFETCH(QByteArray, script);
    QFETCH(QString, expected);
    QCOMPARE(runScript(script, message()), expected);
}

void TestSieve::runtimeErrorFallsBackToKeep() {
    // Incompatible actions (RFC 5429): reject with fileinto is refused, the message kept.
    QCOMPARE(runScript("require [\"reject\",\"fileinto\"];\nfileinto \"x\";\nreject \"no\";", message()),
             "runtime error: 3:1: reject cannot be combined with fileinto -> implicit keep");
    QCOMPARE(runScript("require [\"reject\",\"vacation\"];\nvacation \"x\";\nreject \"no\";", message()),
             "runtime error: 3:1: reject cannot be combined with vacation -> implicit keep");
    QCOMPARE(runScript("require \"reject\";\nreject \"a\";\nreject \"b\";", message()),
             "runtime error: 3:1: reject used twice -> implicit keep");
    QCOMPARE(runScript("require \"vacation\";\nvacation \"a\";\nvacation \"b\";", message()),
             "runtime error: 3:1: vacation used twice -> implicit keep");
    QCOMPARE(runScript("require \"variables\";\nset \"a\" \"not an address\";\nredirect \"${a}\";", message()),
             "runtime error: 3:10: redirect to an invalid address \"not an address\" -> implicit keep");
    // Actions before the error do not survive: the fallback is one keep, no flags.
    QCOMPARE(runScript("require [\"fileinto\",\"imap4flags\"]; addflag \"$x\"; fileinto \"a\"; redirect \"bad\";",
                       message()),
             "runtime error: 1:73: redirect to an invalid address \"bad\" -> implicit keep");
}

void TestSieve::limits() {
    Limits l;
    // Script size.
    QByteArray big = "keep;";
    big += QByteArray(l.maxScriptBytes - big.size(), ' ');
    QVERIFY(compile(big, l).ok());
    QCOMPARE(compile(big + ' ', l).errorMessage(), QStringLiteral("1:1: script larger than 1048576 bytes"));
    // Block nesting.
    auto nested = [](int depth) {
        QByteArray s;
        for (int i = 0; i < depth; ++i) s += "if true {";
        s += "keep;";
        for (int i = 0; i < depth; ++i) s += "}";
        return s;
    };
    QVERIFY(compile(nested(l.maxNesting), l).ok());
    QCOMPARE(compile(nested(l.maxNesting + 1), l).errorMessage(),
             QStringLiteral("1:297: blocks nested deeper than 32"));
    // Test nesting (prefix operators, not brackets).
    auto nots = [](int depth) {
        QByteArray s = "if ";
        for (int i = 1; i < depth; ++i) s += "not ";
        return s + "true { }";
    };
    QVERIFY(compile(nots(l.maxNesting), l).ok());
    QVERIFY(compile(nots(l.maxNesting + 1), l).errorMessage().endsWith(QStringLiteral("tests nested deeper than 32")));
    auto anyofs = [](int depth) {
        QByteArray s = "if ";
        for (int i = 1; i < depth; ++i) s += "anyof(";
        s += "true";
        for (int i = 1; i < depth; ++i) s += ")";
        return s + " { }";
    };
    QVERIFY(compile(anyofs(l.maxNesting), l).ok());
    QVERIFY(
        compile(anyofs(l.maxNesting + 1), l).errorMessage().endsWith(QStringLiteral("tests nested deeper than 32")));
    // String size (quoted and multi-line).
    const QByteArray str(l.maxStringBytes, 'a');
    QVERIFY(compile("require \"fileinto\"; fileinto \"" + str + "\";", l).ok());
    QCOMPARE(compile("require \"fileinto\"; fileinto \"" + str + "a\";", l).errorMessage(),
             QStringLiteral("1:30: string longer than 65536 bytes"));
    const QByteArray lines = QByteArray(l.maxStringBytes - 2, 'b');
    QVERIFY(compile("require \"fileinto\"; fileinto text:\n" + lines + "\n.\n;", l).ok());
    QCOMPARE(compile("require \"fileinto\"; fileinto text:\n" + lines + "b\n.\n;", l).errorMessage(),
             QStringLiteral("1:30: string longer than 65536 bytes"));
    // List size.
    auto list = [](int n) {
        QByteArray s = "if header :is \"x\" [";
        for (int i = 0; i < n; ++i) s += (i ? ",\"" : "\"") + QByteArray::number(i) + "\"";
        return s + "] { }";
    };
    QVERIFY(compile(list(l.maxListItems), l).ok());
    QVERIFY(compile(list(l.maxListItems + 1), l)
                .errorMessage()
                .endsWith(QStringLiteral("more than 1024 strings in one list")));
    // Actions per run.
    auto fileintos = [](int n) {
        QByteArray s = "require \"fileinto\";\n";
        for (int i = 0; i < n; ++i) s += "fileinto \"f" + QByteArray::number(i) + "\";\n";
        return s;
    };
    QVERIFY(!run(*compile(fileintos(l.maxActions), l), message(), l).error);
    QCOMPARE(run(*compile(fileintos(l.maxActions + 1), l), message(), l).error->message,
             QStringLiteral("66:1: more than 64 actions"));
    // Redirects per message.
    auto redirects = [](int n) {
        QByteArray s;
        for (int i = 0; i < n; ++i) s += "redirect \"r" + QByteArray::number(i) + "@example.com\";\n";
        return s;
    };
    QCOMPARE(run(*compile(redirects(l.maxRedirects), l), message(), l).actions.size(), l.maxRedirects);
    QCOMPARE(run(*compile(redirects(l.maxRedirects + 1), l), message(), l).error->message,
             QStringLiteral("5:1: more than 4 redirects"));
    // Execution steps: a script of n no-op commands costs n + (one per command) steps.
    Limits small = l;
    small.maxSteps = 10;
    QByteArray tenSteps = "if true { } if true { } if true { } if true { } if true { }";  // 5 x (if + test)
    QCOMPARE(run(*compile(tenSteps, small), message(), small).steps, 10);
    QVERIFY(!run(*compile(tenSteps, small), message(), small).error);
    QCOMPARE(run(*compile(tenSteps + " stop;", small), message(), small).error->message,
             QStringLiteral("1:61: script ran more than 10 steps"));
    // The wildcard matcher pays steps too: a pathological pattern stops at the limit.
    {
        QByteArray header = "Subject: " + QByteArray(20000, 'a') + "\r\n";
        const QByteArray s = "if header :matches \"subject\" \"*" + QByteArray(1000, 'a') + "b\" { discard; }";
        const Outcome o = run(*compile(s, l), message(header), l);
        QVERIFY(o.error);
        QVERIFY(o.error->message.endsWith(QStringLiteral("script ran more than 1000000 steps")));
        QCOMPARE(actions(o), QStringLiteral("implicit keep"));
    }
    // Variables: count and size.
    auto vars = [](int n) {
        QByteArray s = "require \"variables\";\n";
        for (int i = 0; i < n; ++i) s += "set \"v" + QByteArray::number(i) + "\" \"x\";\n";
        return s;
    };
    QVERIFY(!run(*compile(vars(l.maxVariables), l), message(), l).error);
    QCOMPARE(run(*compile(vars(l.maxVariables + 1), l), message(), l).error->message,
             QStringLiteral("130:1: more than 128 variables"));
    // A value longer than maxVariableBytes is truncated (RFC 5229 3), at a character boundary.
    const QByteArray exact(l.maxVariableBytes, 'v');
    QCOMPARE(runScript("require [\"variables\",\"relational\"]; set \"a\" \"" + exact +
                           "\"; set :length \"n\" \"${a}\"; if string :is \"${n}\" \"4096\" { discard; }",
                       message()),
             QStringLiteral("discard"));
    QCOMPARE(runScript("require [\"variables\"]; set \"a\" \"" + exact +
                           "v\"; set :length \"n\" \"${a}\"; if string :is \"${n}\" \"4096\" { discard; }",
                       message()),
             QStringLiteral("discard"));
    const QByteArray multibyte =
        QByteArray(l.maxVariableBytes - 1, 'v') + "\xc3\xa9";  // 4097 bytes, the last character cut whole
    QCOMPARE(runScript("require [\"variables\"]; set \"a\" \"" + multibyte +
                           "\"; set :length \"n\" \"${a}\"; if string :is \"${n}\" \"4095\" { discard; }",
                       message()),
             QStringLiteral("discard"));
}

void TestSieve::headerDecoding() {
    // RFC 5228 2.7.2: header values are compared after RFC 2047 decoding.
    const QByteArray h =
        "From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.org>\r\nSubject: =?UTF-8?B?w6l0w6k=?= report\r\n";
    QCOMPARE(runScript(QByteArray("if header :is \"subject\" \"\xc3\xa9t\xc3\xa9 report\" { discard; }"), message(h)),
             QStringLiteral("discard"));
    QCOMPARE(runScript(QByteArray("if address :is \"from\" \"andre@example.org\" { discard; }"), message(h)),
             QStringLiteral("discard"));
    // A folded header is unfolded.
    const QByteArray folded = "Subject: one\r\n two\r\n";
    QCOMPARE(runScript("if header :is \"subject\" \"one two\" { discard; }", message(folded)),
             QStringLiteral("discard"));
}

QTEST_GUILESS_MAIN(TestSieve)
#include "tst_sieve.moc"

// RFC 6609: scripts by name; "g:" names are the administrator's (:global).
namespace {
QString runWithIncludes(const QByteArray& main, const Scripts& others, const Limits& limits = {}) {
    auto s = compile(main, limits);
    if (!s) return QStringLiteral("compile error: ") + s.errorMessage();
    Message m = message();
    m.scriptName = QStringLiteral("main");
    auto all = std::make_shared<Scripts>(others);
    all->insert(QStringLiteral("main"), main);
    m.include = [all, limits](bool global, const QString& name, QString* error) -> std::shared_ptr<const Script> {
        const QString key = (global ? QStringLiteral("g:") : QString()) + name;
        if (!all->contains(key)) return nullptr;
        auto c = compile(all->value(key), limits);
        if (!c) {
            *error = c.errorMessage();
            return nullptr;
        }
        return std::make_shared<const Script>(std::move(*c));
    };
    const Outcome o = run(*s, m, limits);
    if (o.error) return QStringLiteral("runtime error: ") + o.error->message + QStringLiteral(" -> ") + actions(o);
    return actions(o);
}
}  // namespace

void TestSieve::include_data() {
    QTest::addColumn<QByteArray>("script");
    QTest::addColumn<Scripts>("others");
    QTest::addColumn<QString>("expected");
    const QByteArray req = "require [\"include\", \"fileinto\", \"variables\"];\n";
    // RFC 6609 6's example, re-written: a personal script with two global ones.
    QTest::newRow("6609 6: personal + global spam and whitelist")
        << QByteArray(
               "require [\"include\", \"variables\", \"fileinto\", \"relational\"];\n"
               "global \"test\"; global \"test_mailbox\";\n"
               "set \"test\" \"$$\";\n"
               "include \"subject_tests\";\n"
               "set \"test\" \"Make money\";\n"
               "include \"subject_tests\";\n"
               "if string :count \"eq\" \"${test_mailbox}\" \"1\" { fileinto \"${test_mailbox}\"; stop; }\n")
        << Scripts{{QStringLiteral("subject_tests"),
                    "require [\"include\", \"variables\", \"relational\", \"fileinto\"];\n"
                    "global \"test\"; global \"test_mailbox\";\n"
                    "if header :contains \"Subject\" \"${test}\" { set \"test_mailbox\" \"spam-${test}\"; }\n"}}
        << "implicit keep";
    QTest::newRow("6609 3.2: actions of the included script count")
        << (req + "include :personal \"a\"; fileinto \"B\";")
        << Scripts{{QStringLiteral("a"), "require \"fileinto\"; fileinto \"A\";"}} << "fileinto \"A\"; fileinto \"B\"";
    QTest::newRow("6609 3.2: :global looks in the administrator's scripts")
        << (req + "include :global \"a\";")
        << Scripts{{QStringLiteral("a"), "discard;"}, {QStringLiteral("g:a"), "require \"fileinto\"; fileinto \"G\";"}}
        << "fileinto \"G\"";
    QTest::newRow("6609 3.4: return ends the included script only")
        << (req + "include \"a\"; fileinto \"after\";")
        << Scripts{{QStringLiteral("a"),
                    "require [\"include\", \"fileinto\"]; fileinto \"A\"; return; fileinto \"never\";"}}
        << "fileinto \"A\"; fileinto \"after\"";
    QTest::newRow("6609 3.4: return in the main script ends it")
        << (req + "fileinto \"A\"; if true { return; } fileinto \"never\";") << Scripts{} << "fileinto \"A\"";
    QTest::newRow("6609 3.2: stop in an included script ends everything")
        << (req + "include \"a\"; fileinto \"never\";")
        << Scripts{{QStringLiteral("a"), "require \"fileinto\"; fileinto \"A\"; stop;"}} << "fileinto \"A\"";
    QTest::newRow("6609 3.2: :once includes one time")
        << (req + "include :once \"a\"; include :once \"a\"; include \"b\";")
        << Scripts{{QStringLiteral("a"), "require [\"imap4flags\"]; addflag \"x\";"},
                   {QStringLiteral("b"), "require [\"include\", \"imap4flags\"]; include :once \"a\"; addflag \"y\";"}}
        << "implicit keep flags=x y";
    QTest::newRow("6609 3.2: the same script twice without :once")
        << (req + "include \"a\"; include \"a\";")
        << Scripts{{QStringLiteral("a"), "require [\"imap4flags\", \"variables\"]; addflag \"x\";"}}
        << "implicit keep flags=x";
    QTest::newRow("6609 3.2: :optional missing script is skipped")
        << (req + "include :optional \"nope\"; fileinto \"A\";") << Scripts{} << "fileinto \"A\"";
    QTest::newRow("6609 3.2: missing script is an error")
        << (req + "include \"nope\";") << Scripts{}
        << "runtime error: 2:1: included script personal:nope does not exist -> implicit keep";
    QTest::newRow("6609 3.2: :optional does not hide a broken script")
        << (req + "include :optional \"bad\";") << Scripts{{QStringLiteral("bad"), "frob;"}}
        << "runtime error: 2:1: included script personal:bad: 1:1: unknown command \"frob\" -> implicit keep";
    QTest::newRow("6609 3.2: a loop is refused")
        << (req + "include \"a\";")
        << Scripts{{QStringLiteral("a"), "require \"include\"; include \"b\";"},
                   {QStringLiteral("b"), "require \"include\"; include \"main\";"}}
        << "runtime error: 1:20: include loop: personal:main -> personal:a -> personal:b -> personal:main -> implicit "
           "keep";
    QTest::newRow("6609 3.2: including itself is a loop")
        << (req + "include \"main\";") << Scripts{}
        << "runtime error: 2:1: include loop: personal:main -> personal:main -> implicit keep";
    QTest::newRow("6609 3.3: variables are local unless global")
        << (req + "set \"a\" \"outer\"; set \"b\" \"outer\"; include \"x\"; fileinto \"${a}-${b}\";")
        << Scripts{{QStringLiteral("x"),
                    "require [\"include\", \"variables\"]; global \"b\"; set \"a\" \"inner\"; set \"b\" \"inner\";"}}
        << "fileinto \"outer-outer\"";
    QTest::newRow("6609 3.3: global variables are shared both ways")
        << (req + "global \"b\"; set \"b\" \"one\"; include \"x\"; fileinto \"${b}\";")
        << Scripts{{QStringLiteral("x"), "require [\"include\", \"variables\"]; global \"b\"; set \"b\" \"${b}-two\";"}}
        << "fileinto \"one-two\"";
    QTest::newRow("6609 3.5: global.NAME")
        << (req + "global \"b\"; set \"b\" \"v\"; include \"x\";")
        << Scripts{{QStringLiteral("x"),
                    "require [\"include\", \"variables\", \"fileinto\"]; fileinto \"${global.b}\";"}}
        << "fileinto \"v\"";
}

void TestSieve::include() {
    QFETCH(QByteArray, script);
    QFETCH(Scripts, others);
    QFETCH(QString, expected);
    QCOMPARE(runWithIncludes(script, others), expected);
}

void TestSieve::includeLimits() {
    // Compile-time errors.
    QCOMPARE(compile("include \"a\";").errorMessage(),
             QStringLiteral("1:1: command \"include\" needs require \"include\""));
    QCOMPARE(compile("require \"include\"; include \"../etc/passwd\";").errorMessage(),
             QStringLiteral(
                 "1:28: invalid script name \"../etc/passwd\" (1 to 64 of A-Z a-z 0-9 . _ -, not starting with '.')"));
    QCOMPARE(compile("require \"include\"; include :global :personal \"a\";").errorMessage(),
             QStringLiteral("1:36: :personal cannot be combined with :global"));
    QCOMPARE(compile("require \"include\"; global \"a\";").errorMessage(),
             QStringLiteral("1:20: global needs require \"variables\""));
    QVERIFY(compile("require \"include\"; include \"" + QByteArray(64, 'a') + "\";").ok());
    QVERIFY(!compile("require \"include\"; include \"" + QByteArray(65, 'a') + "\";").ok());
    // maxIncludeDepth: a chain s1 -> s2 -> ... ; depth N passes, N+1 fails.
    Limits l;
    l.maxIncludeDepth = 3;
    auto chain = [](int n) {
        Scripts s;
        for (int i = 1; i <= n; ++i)
            s.insert(QStringLiteral("s%1").arg(i),
                     i < n ? QByteArray("require \"include\"; include \"s") + QByteArray::number(i + 1) + "\";"
                           : QByteArray("discard;"));
        return s;
    };
    QCOMPARE(runWithIncludes("require \"include\"; include \"s1\";", chain(3), l), QStringLiteral("discard"));
    QVERIFY(runWithIncludes("require \"include\"; include \"s1\";", chain(4), l)
                .contains(QStringLiteral("includes nested deeper than 3")));
    // maxIncludes: that many includes pass, one more fails.
    l = Limits{};
    l.maxIncludes = 4;
    const Scripts one{{QStringLiteral("a"), "require \"imap4flags\"; addflag \"x\";"}};
    QCOMPARE(
        runWithIncludes("require \"include\"; include \"a\"; include \"a\"; include \"a\"; include \"a\";", one, l),
        QStringLiteral("implicit keep flags=x"));
    QCOMPARE(
        runWithIncludes(
            "require \"include\"; include \"a\"; include \"a\"; include \"a\"; include \"a\"; include \"a\";", one, l),
        QStringLiteral("runtime error: 1:72: more than 4 includes -> implicit keep"));
    // :once and :optional includes that do nothing do not count.
    QCOMPARE(runWithIncludes("require \"include\"; include \"a\"; include :once \"a\"; include :optional \"n\"; "
                             "include \"a\"; include \"a\"; include \"a\";",
                             one, l),
             QStringLiteral("implicit keep flags=x"));
}

// Before / user / after (the administrator's sieve.before and sieve.after): one context.
void TestSieve::includeSequence() {
    auto c = [](const QByteArray& src) {
        auto r = compile(src);
        return r ? *r : Script{};
    };
    const Script before =
        c("require [\"include\", \"variables\", \"imap4flags\"]; global \"who\"; set \"who\" \"admin\"; addflag "
          "\"checked\";");
    const Script user =
        c("require [\"include\", \"variables\", \"fileinto\"]; global \"who\"; fileinto \"${who}\"; return; discard;");
    const Script after = c("require \"imap4flags\"; addflag \"late\";");
    Outcome o = run(QList<Runnable>{{&before, QStringLiteral("global:b")},
                                    {&user, QStringLiteral("personal:u")},
                                    {&after, QStringLiteral("global:a")}},
                    message());
    QVERIFY(!o.error);
    QCOMPARE(actions(o),
             QStringLiteral("fileinto \"admin\" flags=checked"));  // `after` added its flag after the fileinto
    const Script stopper = c("stop;");
    o = run(QList<Runnable>{{&stopper, QStringLiteral("global:b")}, {&user, QStringLiteral("personal:u")}}, message());
    QCOMPARE(actions(o), QStringLiteral("implicit keep"));  // stop in `before` ends the sequence
}
