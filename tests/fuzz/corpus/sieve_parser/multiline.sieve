require ["reject","encoded-character","date","relational"];
/* c */ if currentdate :value "ge" "date" "2020-01-01" { reject text:
no
..dot
.
; }
# x
keep;
