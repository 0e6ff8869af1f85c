import re,sys,collections
d=sys.argv[1]
fds=dict(l.split() for l in open(d+'/fds.txt') if len(l.split())==2)
sizes=[];cur=0;ckpt=[];cc=0
for l in open(d+'/strace.txt'):
    m=re.match(r'(\d+)\s+(?:[\d:.]+\s+)?(pwrite64|fsync)\((\d+)',l)
    if not m: continue
    f=fds.get(m.group(3),'').split('/')[-1]
    if f=='outbox-log.db':
        if m.group(2)=='pwrite64': cur+=1
        else: sizes.append(cur); cur=0
    elif f=='outbox.db' and m.group(2)=='pwrite64': cc+=1
c=collections.Counter(sizes)
print("commits",len(sizes),"journal pages",sum(sizes),"data-file page writes",cc)
for k in sorted(c): print(f"  {k} pages x {c[k]} = {k*c[k]} pages")
