require ["include", "variables", "fileinto", "imap4flags"];
global ["a", "b"];
set "a" "${a}x";
if string :matches "${a}" "xxx*" { return; }
include :personal :once "helper";
include :global "lib";
include :optional "missing";
addflag "kw_${global.b}";
fileinto "${a}";
