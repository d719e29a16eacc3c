require ["fileinto","variables","imap4flags"];
if header :matches "Subject" "*[*]*" { fileinto :flags "\\Seen" "${2}"; stop; }
elsif address :domain :is "from" "example.org" { discard; }
