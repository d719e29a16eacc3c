// wizard_flow.h — what the wizard's steps share (internal to the wizard library).
//
// Flow is the state one run carries from step to step (wizard.h lists the
// steps); Console is its terminal: say() prints a line, ask() asks until the
// answer is valid (secret answers without echo), confirm() asks yes/no.
// A step returns StepResult: nullopt to go on, or the exit status to stop with.
// wizard.cpp holds the steps up to the firewall, launch.cpp the last three.
//
// Security: passwords typed at ask(secret) are not echoed; nothing here logs.
#pragma once

#include "checks.h"
#include "environment.h"
#include "setup.h"
#include "wizard.h"

#include <QJsonObject>
#include <QTextStream>

#include <functional>
#include <memory>
#include <optional>

namespace postern::wizard {

class Console {
public:
    Console();
    void say(const QString& s);
    void sayIndented(const QString& text);  // every non-empty line of text, indented by two spaces
    QString ask(const QString& question, const QString& def, const std::function<QString(const QString&)>& validate,
                bool secret = false);
    bool confirm(const QString& question, bool def);

private:
    QTextStream m_out;
    QTextStream m_in;
};

class Launched;  // launch.cpp: the running supervisor

struct Flow {
    const WizardOptions& opt;
    Console& con;
    Answers a;
    bool root = false;
    Environment env;
    bool configured = false;  // an existing configuration with primary_domain
    QList<Finding> findings;
    std::shared_ptr<Launched> launched;  // launch: the supervisor, until the run ends
    QJsonObject ready;                   // launch: the supervisor's ready file
    bool allAnswer = true;               // verify: every listener greeted
};

using StepResult = std::optional<int>;

StepResult launchStep(Flow& f);
StepResult verifyStep(Flow& f);
StepResult reportStep(Flow& f);

}  // namespace postern::wizard
