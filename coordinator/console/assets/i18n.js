// The console's words in English and in Chinese. The Chinese ones are the
// procedure's terms, as the zh-CN records use them
// (coordinator/release/record_render.cpp, release_plan.cpp; docs/procedure.md).

const zh = {
  // shell
  'app.title': 'fabu 发布管理控制台',
  'nav.releases': '发布', 'nav.hosts': '主机与CMDB', 'nav.outbox': '外部推送',
  'nav.freezes': '冻结期', 'nav.audit': '审计记录', 'nav.records': '报告',
  'signin.title': '登录', 'signin.user': '用户名', 'signin.token': '令牌', 'signin.submit': '登录',
  'signin.hint': '使用 fabu 的用户名和令牌（fabu user add 显示的令牌）登录。',
  'signin.expired': '会话已结束，请重新登录。', 'signout': '退出登录', 'lang': '语言', 'loading': '加载中…', 'refresh': '刷新',
  'error': '错误', 'none': '无', 'cancel': '取消', 'ok': '确定', 'yes': '是', 'no': '否',
  'filter': '筛选', 'all': '全部', 'back': '返回',
  // releases
  'releases.title': '发布', 'release': '发布编号', 'title': '标题', 'product': '产品',
  'version': '版本', 'category': '发布类别', 'state': '状态', 'owner': '发布负责人',
  'updated': '更新时间', 'change_refs': '变更单号', 'month': '月份', 'count': '数量',
  'counts': '各状态数量',
  'plan': '发布方案', 'packages': '软件包', 'targets': '目标主机', 'selector': '主机标签',
  'reviewers': '评审人', 'review': '评审', 'reviewer': '评审人', 'decision': '评审结论',
  'comment': '意见', 'round': '评审轮次', 'at': '时间',
  'tests': '测试报告', 'test_deployment': '测试部署', 'author': '测试人员', 'result': '结果',
  'report': '报告', 'acceptance': '测试验收', 'accepted_by': '验收人', 'waive_reason': '紧急发布免测试',
  'golive': '上线方案', 'window': '发布窗口', 'waves': '发布批次', 'wave': '批次',
  'max_failures': '每批允许失败数', 'between_waves': '批次间隔', 'host_timeout': '单台主机超时',
  'auto_rollback': '自动回退', 'observe': '观察期', 'golive_approval': '上线方案评审',
  'golive_approved': '已批准', 'golive_not_approved': '未批准',
  'timeline': '发布过程记录', 'action': '操作', 'actor': '操作人', 'role': '角色',
  'from': '原状态', 'to': '新状态', 'note': '说明', 'closure': '发布关闭', 'close_code': '关闭代码',
  'rollout.link': '上线进度', 'release.link': '发布详情', 'export': '导出记录',
  'not_set': '（未设定）', 'empty': '（空）', 'test_waived_flag': '紧急发布：已免除测试',
  // rollout
  'rollout.title': '上线进度', 'rollout.none': '尚未开始生产上线。', 'waiting': '等待',
  'hosts': '主机数', 'host': '主机', 'step': '步骤', 'message': '信息', 'output': '脚本输出',
  'succeeded': '成功', 'failed': '失败', 'in_flight': '进行中', 'pending': '未开始',
  'threshold': '允许失败数', 'started': '开始时间', 'finished': '结束时间',
  'not_in_release': '符合范围但未纳入本次发布的主机', 'live': '实时', 'rollback': '回退',
  'host_filter.failed': '失败', 'host_filter.active': '进行中', 'host_filter.pending': '未开始',
  'host_filter.succeeded': '成功',
  // hosts
  'hosts.title': '主机与CMDB', 'name': '名称', 'labels': '标签', 'last_seen': '最近上报',
  'agent_version': 'Agent版本', 'apps': '应用', 'enrolled': '注册时间', 'upgrades': '升级记录',
  'inventory': '主机信息', 'removed': '已移除', 'kind': '类型', 'from_version': '原版本',
  'to_version': '新版本', 'package': '软件包', 'outbox.title': '外部推送（CMDB更新）',
  'connector': '连接器', 'attempts': '尝试次数', 'next_attempt': '下次尝试', 'last_error': '最近错误',
  // freezes
  'freezes.title': '冻结期', 'freeze': '冻结期', 'reason': '原因', 'calendar': '未来六周',
  'windows': '已排期发布的发布窗口', 'add_freeze': '新增冻结期', 'remove': '移除',
  // audit
  'audit.title': '审计记录', 'audit.verify': '立即校验整条审计链', 'audit.intact': '审计链完整',
  'audit.watch_intact': '协调器的定期校验：审计链完整，直至记录', 'audit.watch_broken': '协调器的定期校验：审计链在此记录之后被篡改',
  'audit.watch_none': '协调器尚未完成对审计链的首次校验', 'audit.checked_at': '校验于', 'audit.every': '每隔（秒）',
  'audit.broken': '审计链被篡改', 'audit.older': '更早的记录', 'seq': '序号', 'object': '对象', 'detail': '详情', 'source': '来源',
  'entries': '条记录',
  // records
  'records.title': '发布管理报告', 'kpi': '关键指标', 'closed': '已关闭发布数',
  'success_ratio': '发布成功率', 'timeliness_ratio': '发布及时率', 'rollbacks': '回退次数',
  'incidents': '发布引起的事件', 'show': '查看',
  // actions (the CLI's verbs; record_render.cpp's Chinese)
  'action.create': '创建', 'action.update': '修改', 'action.submit': '提交评审', 'action.approve': '批准',
  'action.reject': '驳回', 'action.set-golive': '设定上线方案', 'action.approve-golive': '批准上线方案',
  'action.test-report': '提交测试报告', 'action.accept': '验收', 'action.schedule': '排期',
  'action.cancel': '取消', 'action.test-deploy': '测试部署', 'action.start-rollout': '开始上线',
  'action.pause': '暂停', 'action.resume': '继续', 'action.finish-rollout': '上线完成',
  'action.fail-rollout': '上线失败', 'action.rollback': '回退', 'action.finish-rollback': '回退完成',
  'action.close': '关闭', 'action.gate': '控制点确认', 'action.abort': '中止',
  'action.reschedule': '重新排期', 'action.override-freeze': '越过冻结期',
  'action.start': '开始上线', 'action.test': '测试部署',
  'action.retry': '重新部署失败主机', 'action.preflight': '重新预检', 'action.preflight-override': '越过预检结果',
  'preflight': '上线前预检', 'preflight.round': '预检轮次', 'preflight.asked': '发起',
  'preflight.override': '已越过', 'preflight.free': '可用空间', 'preflight.installed': '当前版本',
  'preflight.reasons': '不能安装的原因', 'preflight.counts': '结果',
  'preflight_state.ready': '可以安装', 'preflight_state.would_fail': '将会失败',
  'preflight_state.waiting': '等待应答', 'preflight_state.unknown': '未应答',
  'checks': '指标检查', 'check': '检查', 'check.verdict': '结论', 'check.summary': '说明',
  'check.measurements': '测量值', 'check.dry_run': '仅记录',
  'verdict.passed': '通过', 'verdict.failed': '未通过', 'verdict.inconclusive': '无法判断',
  'verdict.measuring': '测量中',
  'needs.reason': '原因（必填）', 'needs.comment': '意见', 'needs.comment_required': '意见（必填）',
  'test.result': '测试结果', 'test.report': '测试报告（Markdown）', 'waive_test': '免测试（仅紧急发布）',
  'close.code': '关闭代码（默认按结果）', 'close.notes': '关闭说明', 'done': '已完成',
  // values
  'state.draft': '草稿', 'state.in_review': '评审中', 'state.approved': '已批准', 'state.testing': '测试中',
  'state.accepted': '已验收', 'state.scheduled': '已排期', 'state.deploying': '部署中',
  'state.paused': '已暂停', 'state.deployed': '已部署', 'state.failed': '发布失败',
  'state.rolling_back': '回退中', 'state.rolled_back': '已回退', 'state.closed': '已关闭',
  'state.cancelled': '已取消',
  'category.major': '重大发布', 'category.minor': '一般发布', 'category.patch': '补丁发布',
  'category.emergency': '紧急发布',
  'close_code.success': '成功', 'close_code.partial': '部分成功', 'close_code.failed': '失败',
  'close_code.rolled_back': '已回退', 'close_code.cancelled': '已取消',
  'result.succeeded': '成功', 'result.failed': '失败', 'result.rolled_back': '已回退',
  'result.rollback_failed': '回退失败', 'result.timeout': '超时', 'result.host_removed': '主机已移除',
  'test_result.passed': '通过', 'test_result.failed': '未通过',
  'decision.approved': '批准', 'decision.rejected': '驳回', 'decision.pending': '待评审',
  'wave_state.pending': '未开始', 'wave_state.running': '进行中', 'wave_state.succeeded': '成功',
  'wave_state.failed': '失败', 'wave_state.accepted': '已接受失败',
  'delivery.pending': '待推送', 'delivery.failing': '推送失败', 'delivery.delivered': '已推送',
  'delivery.waived': '已豁免',
  'record_kind.install': '升级', 'record_kind.rollback': '回退',
  'role.admin': '管理员', 'role.approver': '发布管理负责人', 'role.release_manager': '发布负责人',
  'role.tester': '发布测试人员', 'role.viewer': '查看者', 'role.system': '系统',
  'section.purpose': '发布的目的和背景', 'section.scope': '发布影响范围',
  'section.participants': '参与部门及人员', 'section.communication': '交流、准备、备案和培训',
  'section.work_plan': '工作计划（含上线规划）', 'section.follow_up': '部署完成的后续工作计划',
  'section.rollback_plan': '发布失败情况下的退回方案',
  'section.known_issues': '可预见问题以及相应的解决方法',
  'section.baseline': '与软、硬件有关的配置基线',
};

const en = {
  'app.title': 'fabu release console',
  'nav.releases': 'Releases', 'nav.hosts': 'Hosts & CMDB', 'nav.outbox': 'Outbox',
  'nav.freezes': 'Freezes', 'nav.audit': 'Audit', 'nav.records': 'Reports',
  'signin.title': 'Sign in', 'signin.user': 'User name', 'signin.token': 'Token', 'signin.submit': 'Sign in',
  'signin.hint': 'Sign in with your fabu user name and token (the one `fabu user add` showed).',
  'signin.expired': 'Your session ended: sign in again.', 'signout': 'Sign out', 'lang': 'Language', 'loading': 'Loading…', 'refresh': 'Refresh',
  'error': 'Error', 'none': 'None', 'cancel': 'Cancel', 'ok': 'OK', 'yes': 'yes', 'no': 'no',
  'filter': 'Filter', 'all': 'All', 'back': 'Back',
  'releases.title': 'Releases', 'release': 'Release', 'title': 'Title', 'product': 'Product',
  'version': 'Version', 'category': 'Category', 'state': 'State', 'owner': 'Release manager',
  'updated': 'Updated', 'change_refs': 'Change refs', 'month': 'Month', 'count': 'Count',
  'counts': 'Per state',
  'plan': 'Release plan', 'packages': 'Packages', 'targets': 'Targets', 'selector': 'selector',
  'reviewers': 'Reviewers', 'review': 'Review', 'reviewer': 'Reviewer', 'decision': 'Decision',
  'comment': 'Comment', 'round': 'Round', 'at': 'Time',
  'tests': 'Test reports', 'test_deployment': 'Test deployment', 'author': 'Tester', 'result': 'Result',
  'report': 'Report', 'acceptance': 'Acceptance', 'accepted_by': 'Accepted by',
  'waive_reason': 'Test waived (emergency)',
  'golive': 'Go-live plan', 'window': 'Window', 'waves': 'Waves', 'wave': 'Wave',
  'max_failures': 'Max failures per wave', 'between_waves': 'Between waves', 'host_timeout': 'Host timeout',
  'auto_rollback': 'Auto rollback', 'observe': 'Observe', 'golive_approval': 'Go-live approval',
  'golive_approved': 'approved', 'golive_not_approved': 'not approved',
  'timeline': 'Timeline', 'action': 'Action', 'actor': 'Actor', 'role': 'Role',
  'from': 'From', 'to': 'To', 'note': 'Note', 'closure': 'Closure', 'close_code': 'Close code',
  'rollout.link': 'Rollout', 'release.link': 'Release', 'export': 'Export records',
  'not_set': '(not set)', 'empty': '(empty)', 'test_waived_flag': 'EMERGENCY RELEASE: TESTING WAIVED',
  'rollout.title': 'Rollout', 'rollout.none': 'No production rollout yet.', 'waiting': 'waiting',
  'hosts': 'Hosts', 'host': 'Host', 'step': 'Step', 'message': 'Message', 'output': 'Hook output',
  'succeeded': 'Succeeded', 'failed': 'Failed', 'in_flight': 'In progress', 'pending': 'Pending',
  'threshold': 'Failures tolerated', 'started': 'Started', 'finished': 'Finished',
  'not_in_release': 'Hosts matching the targets now, not in this release', 'live': 'live',
  'rollback': 'Rollback',
  'host_filter.failed': 'Failed', 'host_filter.active': 'In progress', 'host_filter.pending': 'Pending',
  'host_filter.succeeded': 'Succeeded',
  'hosts.title': 'Hosts and CMDB', 'name': 'Name', 'labels': 'Labels', 'last_seen': 'Last seen',
  'agent_version': 'Agent version', 'apps': 'Applications', 'enrolled': 'Enrolled', 'upgrades': 'Upgrade history',
  'inventory': 'Facts', 'removed': 'removed', 'kind': 'Kind', 'from_version': 'From version',
  'to_version': 'To version', 'package': 'Package', 'outbox.title': 'Outbox (outward CMDB deliveries)',
  'connector': 'Connector', 'attempts': 'Attempts', 'next_attempt': 'Next attempt', 'last_error': 'Last error',
  'freezes.title': 'Freezes', 'freeze': 'Freeze', 'reason': 'Reason', 'calendar': 'The coming six weeks',
  'windows': 'Go-live windows of scheduled releases', 'add_freeze': 'Add a freeze', 'remove': 'Remove',
  'audit.title': 'Audit trail', 'audit.verify': 'Verify the whole chain now', 'audit.intact': 'The audit chain is intact',
  'audit.watch_intact': 'The coordinator\'s own check found the chain whole up to entry',
  'audit.watch_broken': 'The coordinator\'s own check found the chain broken after entry',
  'audit.watch_none': 'The coordinator has not finished its first check of the chain yet', 'audit.checked_at': 'checked',
  'audit.every': 'every (seconds)',
  'audit.broken': 'The audit chain is broken', 'audit.older': 'Older entries', 'seq': 'Seq', 'object': 'Object', 'detail': 'Detail',
  'source': 'Source', 'entries': 'entries',
  'records.title': 'Release management report', 'kpi': 'Key indicators', 'closed': 'Releases closed',
  'success_ratio': 'Success ratio', 'timeliness_ratio': 'Timeliness ratio', 'rollbacks': 'Rollbacks',
  'incidents': 'Incidents caused by releases', 'show': 'Show',
  'action.start': 'start', 'action.test': 'test',
  'needs.reason': 'Reason (required)', 'needs.comment': 'Comment', 'needs.comment_required': 'Comment (required)',
  'action.retry': 'retry failed hosts', 'action.preflight': 'pre-flight again',
  'action.preflight-override': 'override pre-flight',
  'preflight': 'Pre-flight', 'preflight.round': 'Round', 'preflight.asked': 'Asked',
  'preflight.override': 'Overridden', 'preflight.free': 'Free', 'preflight.installed': 'Installed',
  'preflight.reasons': 'Why not', 'preflight.counts': 'Answers',
  'preflight_state.ready': 'Ready', 'preflight_state.would_fail': 'Would fail',
  'preflight_state.waiting': 'Waiting', 'preflight_state.unknown': 'Unknown',
  'checks': 'Checks on metrics', 'check': 'Check', 'check.verdict': 'Verdict', 'check.summary': 'Summary',
  'check.measurements': 'Measurements', 'check.dry_run': 'dry run',
  'verdict.passed': 'Passed', 'verdict.failed': 'Failed', 'verdict.inconclusive': 'Inconclusive',
  'verdict.measuring': 'Measuring',
  'test.result': 'Result', 'test.report': 'Report (Markdown)', 'waive_test': 'Waive the test (emergency only)',
  'close.code': 'Close code (default: the outcome)', 'close.notes': 'Closing notes', 'done': 'Done',
  'state.draft': 'Draft', 'state.in_review': 'In review', 'state.approved': 'Approved', 'state.testing': 'Testing',
  'state.accepted': 'Accepted', 'state.scheduled': 'Scheduled', 'state.deploying': 'Deploying',
  'state.paused': 'Paused', 'state.deployed': 'Deployed', 'state.failed': 'Failed',
  'state.rolling_back': 'Rolling back', 'state.rolled_back': 'Rolled back', 'state.closed': 'Closed',
  'state.cancelled': 'Cancelled',
  'category.major': 'Major', 'category.minor': 'Minor', 'category.patch': 'Patch', 'category.emergency': 'Emergency',
  'close_code.success': 'Success', 'close_code.partial': 'Partial', 'close_code.failed': 'Failed',
  'close_code.rolled_back': 'Rolled back', 'close_code.cancelled': 'Cancelled',
  'result.succeeded': 'Succeeded', 'result.failed': 'Failed', 'result.rolled_back': 'Rolled back',
  'result.rollback_failed': 'Rollback failed', 'result.timeout': 'Timed out', 'result.host_removed': 'Host removed',
  'test_result.passed': 'Passed', 'test_result.failed': 'Failed',
  'decision.approved': 'Approved', 'decision.rejected': 'Rejected', 'decision.pending': 'Pending',
  'wave_state.pending': 'Pending', 'wave_state.running': 'Running', 'wave_state.succeeded': 'Succeeded',
  'wave_state.failed': 'Failed', 'wave_state.accepted': 'Failures accepted',
  'delivery.pending': 'Pending', 'delivery.failing': 'Failing', 'delivery.delivered': 'Delivered',
  'delivery.waived': 'Waived',
  'record_kind.install': 'Install', 'record_kind.rollback': 'Rollback',
  'section.purpose': 'Purpose and background', 'section.scope': 'Scope of impact',
  'section.participants': 'Participating departments and people',
  'section.communication': 'Communication, preparation, filing and training',
  'section.work_plan': 'Work plan, including the go-live plan', 'section.follow_up': 'Follow-up after deployment',
  'section.rollback_plan': 'Rollback plan if the release fails',
  'section.known_issues': 'Foreseeable problems and their solutions',
  'section.baseline': 'Software and hardware configuration baseline',
};

// Actions and roles stay the CLI's words in English, as in the records.
const words = {en, 'zh-CN': zh};
let current = 'en';

export const LANGS = [['en', 'English'], ['zh-CN', '中文']];

export function pickLang(stored) {
  if (stored === 'en' || stored === 'zh-CN') return stored;
  const nav = (navigator.languages && navigator.languages[0]) || navigator.language || 'en';
  return nav.toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
}

export function setLang(lang) {
  current = lang === 'zh-CN' ? 'zh-CN' : 'en';
  document.documentElement.lang = current;
  document.title = t('app.title');
}

export function lang() { return current; }

// The word for `key`; an unknown key of a value family (a category of the
// site's own config.json, a new state) is shown as written.
export function t(key) {
  const table = words[current];
  if (key in table) return table[key];
  if (key.startsWith('action.') || key.startsWith('role.')) return key.slice(key.indexOf('.') + 1);
  if (key in en) return en[key];
  const dot = key.indexOf('.');
  return dot >= 0 ? key.slice(dot + 1) : key;
}

// A value of a family: tv('state', 'in_review') -> 评审中 / In review.
export function tv(family, value) {
  if (value === undefined || value === null || value === '') return '—';
  return t(`${family}.${value}`);
}
