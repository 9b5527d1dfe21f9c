$script:UserSelect = 'id,userPrincipalName,onPremisesImmutableId,onPremisesSyncEnabled,accountEnabled'
$script:RoleDefinitions = $null
# A log cell starting like this is a formula to a spreadsheet (or hides what follows): it gets
# a leading quote, which -Undo takes off again (every value starting with a quote gets one too).
$script:FormulaLead = '^[=+\-@''\s\p{C}\uFF1D\uFF0B\uFF0D\uFF20]'
$script:AdAttributes = @('userPrincipalName', 'mail', 'mailNickname', 'proxyAddresses', 'sAMAccountName', 'displayName', 'givenName', 'targetAddress')
$script:Changed = 0
$script:Unverified = 0
$script:Skipped = 0
$script:Failed = 0
if (-not $LogPath) {
    $here = $PSScriptRoot
    if (-not $here) { $here = (Get-Location).Path }
    $LogPath = Join-Path $here ('syncaudit-changes-{0}.csv' -f (Get-Date -Format 'yyyyMMdd-HHmmss'))
}
$script:LogPath = $LogPath

# --- helpers ----------------------------------------------------------------------------------

function Write-SaPlan {
    param([string]$Fingerprint, [string]$Code, [string]$Text)
    Write-Host ('PLAN  [{0}] {1}: {2}' -f $Fingerprint, $Code, $Text)
}

function Write-SaDone {
    # One per completed step (a step may log several rows: a UPN detour, a purge and a write).
    param([string]$Fingerprint, [string]$Code, [string]$Text)
    $script:Changed += 1
    Write-Host ('DONE  [{0}] {1}: {2}' -f $Fingerprint, $Code, $Text)
}

function ConvertTo-SaCsvCell {
    param([AllowNull()][object]$Value)
    $text = [string]$Value
    if ($text -match $script:FormulaLead) { return ('''' + $text) }
    return $text
}

function ConvertFrom-SaCsvCell {
    param([AllowNull()][string]$Text)
    if ($Text -and $Text.StartsWith('''')) { return $Text.Substring(1) }
    return [string]$Text
}

function Write-SaLog {
    # One row per event in the CSV beside the script; -Undo reads it back. Export-Csv honours
    # ShouldProcess (it has -WhatIf and -Confirm), so the log switches both off: under -WhatIf
    # the log must still be written, under -Confirm it must not ask for every row.
    # https://learn.microsoft.com/powershell/module/microsoft.powershell.utility/export-csv
    param(
        [string]$Fingerprint, [string]$Code, [string]$Action, [string]$TargetId,
        [string]$Property = '', [AllowNull()][object]$Before = $null,
        [AllowNull()][object]$After = $null, [string]$Result = 'done',
        [string]$Undo = 'none', [string]$Note = '', [string]$Operation = ''
    )
    $row = [pscustomobject]@{
        Time        = (Get-Date).ToUniversalTime().ToString('o')
        RunId       = ConvertTo-SaCsvCell $script:RunId
        Operation   = $Operation
        Fingerprint = ConvertTo-SaCsvCell $Fingerprint
        Code        = ConvertTo-SaCsvCell $Code
        Action      = ConvertTo-SaCsvCell $Action
        TargetId    = ConvertTo-SaCsvCell $TargetId
        Property    = ConvertTo-SaCsvCell $Property
        Before      = ConvertTo-SaCsvCell $Before
        After       = ConvertTo-SaCsvCell $After
        Result      = $Result
        Undo        = $Undo
        Note        = ConvertTo-SaCsvCell $Note
    }
    $row | Export-Csv -LiteralPath $script:LogPath -Append -NoTypeInformation -Encoding UTF8 -WhatIf:$false -Confirm:$false
}

function Start-SaChange {
    # Logs a write BEFORE it is made, with the value it replaces, so -Undo has the before-value
    # even when the script stops half-way. Stop-SaChange logs how it ended.
    param(
        [string]$Fingerprint, [string]$Code, [string]$Action, [string]$TargetId,
        [string]$Property, [AllowNull()][object]$Before, [AllowNull()][object]$After,
        [string]$Undo = 'none'
    )
    $change = @{
        Fingerprint = $Fingerprint; Code = $Code; Action = $Action; TargetId = $TargetId
        Property = $Property; Before = [string]$Before; After = [string]$After; Undo = $Undo
        Operation = [guid]::NewGuid().ToString()
    }
    Write-SaLog @change -Result 'started'
    return $change
}

function Stop-SaChange {
    # done: the read-back shows the new value; unverified: the read-back timed out (-Undo still
    # reverses it, after checking the value); failed: the write raised an error; skipped: the
    # step decided not to write after all.
    param([hashtable]$Change, [ValidateSet('done', 'unverified', 'failed', 'skipped')][string]$Result, [string]$Note = '')
    if ($Result -eq 'unverified') { $script:Unverified += 1 }
    Write-SaLog @Change -Result $Result -Note $Note
}

function Skip-SaStep {
    param([string]$Fingerprint, [string]$Code, [string]$Action, [string]$TargetId, [string]$Reason)
    $script:Skipped += 1
    Write-Warning ('SKIP  [{0}] {1}: {2}' -f $Fingerprint, $Code, $Reason)
    Write-SaLog -Fingerprint $Fingerprint -Code $Code -Action $Action -TargetId $TargetId -Result 'skipped' -Note $Reason
}

function Write-SaFailure {
    param([string]$Fingerprint, [string]$Code, [string]$Action, [string]$TargetId, [object]$ErrorRecord)
    $message = [string]$ErrorRecord
    $script:Failed += 1
    Write-Warning ('FAIL  [{0}] {1}: {2}' -f $Fingerprint, $Code, $message)
    Write-SaLog -Fingerprint $Fingerprint -Code $Code -Action $Action -TargetId $TargetId -Result 'failed' -Note $message
}

function Confirm-SaChange {
    # The script's own ShouldProcess: honours -WhatIf and -Confirm given to the script.
    param([string]$Target, [string]$Operation)
    return $script:Cmdlet.ShouldProcess($Target, $Operation)
}

function Connect-SaGraph {
    # Connects to the run's tenant with exactly the given scopes, then refuses to go on unless
    # the session is in that tenant and holds every scope: Connect-MgGraph may reuse a cached
    # session of another tenant.
    # https://learn.microsoft.com/powershell/module/microsoft.graph.authentication/connect-mggraph
    param([string[]]$Scopes)
    foreach ($name in $script:GraphModules) {
        if (-not (Get-Module -ListAvailable -Name $name)) {
            throw ('PowerShell module {0} is missing: Install-Module {0} -Scope CurrentUser' -f $name)
        }
        Import-Module $name
    }
    $tenant = $script:RunTenantId
    if ($tenant -and $TenantId -and ($TenantId -ne $tenant)) {
        throw ('-TenantId {0} is not the tenant this audit ran against ({1})' -f $TenantId, $tenant)
    }
    if (-not $tenant) { $tenant = $TenantId }
    if (-not $tenant) {
        throw 'The audit did not record its tenant id: run again with -TenantId <the audited tenant id>.'
    }
    Connect-MgGraph -TenantId $tenant -Scopes $Scopes -NoWelcome
    $context = Get-MgContext
    if ((-not $context) -or ([string]$context.TenantId -ne $tenant)) {
        throw ('The Graph session is in tenant {0}, not {1}: Disconnect-MgGraph, then run again.' -f $context.TenantId, $tenant)
    }
    $missing = @($Scopes | Where-Object { $context.Scopes -notcontains $_ })
    if ($missing.Count -gt 0) {
        throw ('The Graph session lacks the permission(s) {0}: consent to them, then run again.' -f ($missing -join ', '))
    }
}

function Format-SaFilter {
    # An OData equality filter; the value's quotes are doubled for OData.
    param([string]$Property, [string]$Value)
    return ('{0} eq ''{1}''' -f $Property, $Value.Replace('''', ''''''))
}

function Invoke-SaGraphGet {
    # GET one object or every page of a collection (following @odata.nextLink). The filter is
    # escaped with [uri]::EscapeDataString: Get-MgUser -Filter sends a '+' unescaped and Graph
    # reads it as a space, so a base64 anchor with '+' finds nobody (msgraph-sdk-powershell
    # issues #2973 and #3522).
    param([string]$Path, [string]$Filter = '', [string]$Select = '')
    $query = @()
    if ($Filter) { $query += ('$filter={0}' -f [uri]::EscapeDataString($Filter)) }
    if ($Select) { $query += ('$select={0}' -f $Select) }
    $uri = $Path
    if ($query.Count -gt 0) { $uri = '{0}?{1}' -f $Path, ($query -join '&') }
    $items = @()
    while ($uri) {
        $page = Invoke-MgGraphRequest -Method GET -Uri $uri -OutputType HashTable
        if (-not $page.ContainsKey('value')) { return , $page }
        $items += @($page['value'])
        $uri = [string]$page['@odata.nextLink']
    }
    return $items
}

function ConvertTo-SaUser {
    param([hashtable]$Item)
    return [pscustomobject]@{
        Id                    = [string]$Item['id']
        UserPrincipalName     = [string]$Item['userPrincipalName']
        OnPremisesImmutableId = [string]$Item['onPremisesImmutableId']
        OnPremisesSyncEnabled = $Item['onPremisesSyncEnabled']
        AccountEnabled        = $Item['accountEnabled']
    }
}

function Get-SaUsers {
    param([string]$Property, [string]$Value)
    $filter = Format-SaFilter -Property $Property -Value $Value
    return @(Invoke-SaGraphGet -Path 'v1.0/users' -Filter $filter -Select $script:UserSelect | ForEach-Object { ConvertTo-SaUser -Item $_ })
}

function Get-SaUser {
    # The active user with this id, or $null.
    param([string]$UserId)
    return @(Get-SaUsers -Property 'id' -Value $UserId) | Select-Object -First 1
}

function Get-SaActiveHolders {
    # Active users whose onPremisesImmutableId is exactly this anchor (case-sensitive). Fails
    # closed: when the run saw a holder and the lookup does not return it, the lookup cannot be
    # trusted and the action stops.
    param([string]$Anchor, [string]$KnownHolder = '')
    $users = @(Get-SaUsers -Property 'onPremisesImmutableId' -Value $Anchor | Where-Object { $_.OnPremisesImmutableId -ceq $Anchor })
    if ($KnownHolder -and (-not @($users | Where-Object { $_.Id -eq $KnownHolder }))) {
        throw ('the lookup of onPremisesImmutableId {0} did not return {1}, which holds it: stopping rather than trusting an empty answer' -f $Anchor, $KnownHolder)
    }
    return $users
}

function Get-SaDeletedUsers {
    # https://learn.microsoft.com/graph/api/directory-deleteditems-list
    return @(Invoke-SaGraphGet -Path 'v1.0/directory/deletedItems/microsoft.graph.user' -Select $script:UserSelect | ForEach-Object { ConvertTo-SaUser -Item $_ })
}

function Get-SaDeletedHolders {
    param([string]$Anchor)
    return @(Get-SaDeletedUsers | Where-Object { $_.OnPremisesImmutableId -ceq $Anchor })
}

function Get-SaDeletedUser {
    param([string]$Id)
    return @(Get-SaDeletedUsers | Where-Object { $_.Id -eq $Id }) | Select-Object -First 1
}

function Test-SaFederatedUpn {
    # Whether the UPN's domain is federated (Get-MgDomain, Domain.Read.All).
    param([string]$Upn)
    $domain = Get-MgDomain -DomainId ($Upn.Split('@')[-1])
    return ($domain.AuthenticationType -eq 'Federated')
}

function Set-SaImmutableId {
    # Writes onPremisesImmutableId, or clears it for an empty value. Update-MgUser with $null
    # sends an empty string and does not clear it, so clearing PATCHes a JSON null.
    param([string]$UserId, [AllowEmptyString()][string]$Value)
    if ([string]::IsNullOrEmpty($Value)) {
        Invoke-MgGraphRequest -Method PATCH -Uri ('v1.0/users/{0}' -f $UserId) -Body '{"onPremisesImmutableId":null}' -ContentType 'application/json' | Out-Null
    }
    else {
        Update-MgUser -UserId $UserId -OnPremisesImmutableId $Value -Confirm:$false
    }
}

function Wait-SaReadBack {
    # A write's read-back: $Check until it holds, 6 tries 5 s apart (Graph writes are not
    # always visible at once, and clearing is unreliable). $true when it held.
    param([scriptblock]$Check)
    for ($i = 0; $i -lt 6; $i++) {
        if ($i -gt 0) { Start-Sleep -Seconds 5 }
        if (& $Check) { return $true }
    }
    return $false
}

function Test-SaImmutableId {
    param([string]$UserId, [AllowEmptyString()][string]$Expected)
    return Wait-SaReadBack -Check {
        $user = Get-SaUser -UserId $UserId
        $user -and ([string]$user.OnPremisesImmutableId -ceq $Expected)
    }
}

function Get-SaDetourUpn {
    # For a user whose UPN domain is federated: a free UPN on the initial *.onmicrosoft.com
    # domain to park it on while the anchor changes; $null for managed domains.
    param([object]$User)
    if (-not (Test-SaFederatedUpn -Upn $User.UserPrincipalName)) { return $null }
    $initial = @(Get-MgDomain -All | Where-Object { $_.IsInitial }) | Select-Object -First 1
    $temporary = '{0}@{1}' -f $User.UserPrincipalName.Split('@')[0], $initial.Id
    if (@(Get-SaUsers -Property 'userPrincipalName' -Value $temporary).Count -gt 0) {
        throw ('the temporary UPN {0} for the federated-domain detour is taken' -f $temporary)
    }
    return $temporary
}

function Invoke-SaWithUpnDetour {
    # Runs $Change; for a user in a federated domain first moves the UPN to the initial domain
    # and always moves it back afterwards (Graph refuses anchor changes on federated UPNs, and a
    # federated UPN needs an immutableId, so the anchor is set before the UPN moves back).
    param([string]$Fingerprint, [string]$Code, [object]$User, [scriptblock]$Change)
    $temporary = Get-SaDetourUpn -User $User
    if (-not $temporary) {
        & $Change
        return
    }
    $original = $User.UserPrincipalName
    $away = Start-SaChange -Fingerprint $Fingerprint -Code $Code -Action 'upn-detour' -TargetId $User.Id -Property 'userPrincipalName' -Before $original -After $temporary -Undo 'upn'
    try { Update-MgUser -UserId $User.Id -UserPrincipalName $temporary -Confirm:$false }
    catch { Stop-SaChange -Change $away -Result 'failed' -Note ([string]$_); throw }
    Stop-SaChange -Change $away -Result 'done'
    try {
        & $Change
    }
    finally {
        # Raises nothing: an error here would hide the one from $Change. A failed move back is
        # logged and named; the 'upn' row above lets -Undo move it back later.
        $back = Start-SaChange -Fingerprint $Fingerprint -Code $Code -Action 'upn-detour-back' -TargetId $User.Id -Property 'userPrincipalName' -Before $temporary -After $original
        try {
            Update-MgUser -UserId $User.Id -UserPrincipalName $original -Confirm:$false
            Stop-SaChange -Change $back -Result 'done'
        }
        catch {
            Stop-SaChange -Change $back -Result 'failed' -Note ([string]$_)
            $script:Failed += 1
            Write-Warning ('FAIL  [{0}] {1}: {2} is still {3}; move it back with Update-MgUser -UserId {4} -UserPrincipalName <its UPN {2}>, or -Undo this log: {5}' -f $Fingerprint, $Code, $original, $temporary, $User.Id, [string]$_)
        }
    }
}

function ConvertTo-SaUtc {
    # A Graph date-time (text or [datetime], depending on the JSON reader) as UTC, or $null.
    param([AllowNull()][object]$Value)
    if ($null -eq $Value -or [string]$Value -eq '') { return $null }
    if ($Value -is [datetime]) { return $Value.ToUniversalTime() }
    return [datetimeoffset]::Parse([string]$Value, [Globalization.CultureInfo]::InvariantCulture).UtcDateTime
}

function Get-SaRoleDefinitions {
    # Role definition id -> name and whether it is privileged. isPrivileged is on the beta
    # endpoint only (https://learn.microsoft.com/graph/api/resources/unifiedroledefinition?view=graph-rest-beta).
    if ($null -eq $script:RoleDefinitions) {
        $definitions = @{}
        foreach ($item in @(Invoke-SaGraphGet -Path 'beta/roleManagement/directory/roleDefinitions' -Select 'id,templateId,displayName,isPrivileged')) {
            $entry = @{ Name = [string]$item['displayName']; Privileged = ($item['isPrivileged'] -eq $true) }
            $definitions[[string]$item['id']] = $entry
            if ($item['templateId']) { $definitions[[string]$item['templateId']] = $entry }
        }
        $script:RoleDefinitions = $definitions
    }
    return $script:RoleDefinitions
}

function Get-SaRoleSchedules {
    # The user's active role assignments and eligibilities with their schedules, from the PIM
    # instances (a permanent assignment is an instance too):
    # https://learn.microsoft.com/graph/api/rbacapplication-list-roleassignmentscheduleinstances
    # https://learn.microsoft.com/graph/api/rbacapplication-list-roleeligibilityscheduleinstances
    # Where those lists fail (a tenant without PIM), every assignment is a permanent one and no
    # eligibility exists: the assignments are read from roleAssignments instead, marked so the
    # role detour leaves them to a person.
    param([string]$UserId)
    $filter = Format-SaFilter -Property 'principalId' -Value $UserId
    $definitions = Get-SaRoleDefinitions
    $sources = @(
        @('assignment', 'v1.0/roleManagement/directory/roleAssignmentScheduleInstances'),
        @('eligibility', 'v1.0/roleManagement/directory/roleEligibilityScheduleInstances')
    )
    $found = @()
    try {
        $assignments = @(Invoke-SaGraphGet -Path $sources[0][1] -Filter $filter)
        foreach ($item in $assignments) { $found += , @('assignment', 'pim', $item) }
    }
    catch {
        # Only a tenant without PIM (no Entra ID P2 licence) falls back; any other error (429,
        # 5xx, 403) stops the action, so a blocked target is never taken for a safe one.
        if ([string]$_ -notmatch 'licen[cs]e|premium') { throw }
        Write-Warning ('the PIM instance lists are not available ({0}): reading roleAssignments' -f [string]$_)
        foreach ($item in @(Invoke-SaGraphGet -Path 'v1.0/roleManagement/directory/roleAssignments' -Filter $filter)) { $found += , @('assignment', 'roleAssignments', $item) }
        $sources = @()
    }
    if ($sources.Count -gt 1) {
        foreach ($item in @(Invoke-SaGraphGet -Path $sources[1][1] -Filter $filter)) { $found += , @('eligibility', 'pim', $item) }
    }
    $schedules = @()
    foreach ($entry in $found) {
        $item = $entry[2]
        $roleId = [string]$item['roleDefinitionId']
        $definition = $definitions[$roleId]
        $privileged = $true  # a role the definitions do not list counts as privileged
        $name = $roleId
        if ($definition) { $privileged = $definition.Privileged; $name = $definition.Name }
        $assignmentType = 'Assigned'
        if ($item['assignmentType']) { $assignmentType = [string]$item['assignmentType'] }
        $memberType = 'Direct'
        if ($item['memberType']) { $memberType = [string]$item['memberType'] }
        $start = ConvertTo-SaUtc -Value $item['startDateTime']
        $end = ConvertTo-SaUtc -Value $item['endDateTime']
        $schedules += [pscustomobject]@{
            Kind             = $entry[0]
            Api              = $entry[1]
            RoleDefinitionId = $roleId
            RoleName         = $name
            Privileged       = $privileged
            DirectoryScopeId = [string]$item['directoryScopeId']
            MemberType       = $memberType
            AssignmentType   = $assignmentType
            Start            = $(if ($start) { $start.ToString('o') } else { '' })
            End              = $(if ($end) { $end.ToString('o') } else { '' })
        }
    }
    return $schedules
}

function Get-SaHardMatchBlockers {
    # The 2026 hard-match hardening, re-checked live: Entra refuses to hard-match onto a cloud
    # user that has onPremisesObjectIdentifier set or is assigned or eligible for a privileged
    # role. A read that fails throws, so the action stops (fail closed).
    # https://learn.microsoft.com/entra/identity/hybrid/connect/how-to-connect-install-existing-tenant#hard-match-security-protections
    param([string]$UserId)
    $blockers = @()
    $user = Invoke-SaGraphGet -Path ('beta/users/{0}' -f $UserId) -Select 'id,onPremisesObjectIdentifier'
    if ($user['onPremisesObjectIdentifier']) {
        $blockers += [pscustomobject]@{ Kind = 'object-identifier'; Text = ('onPremisesObjectIdentifier is set ({0}): clear it first (clear-onprem-object-id, Hybrid Identity Administrator)' -f $user['onPremisesObjectIdentifier']) }
    }
    foreach ($schedule in @(Get-SaRoleSchedules -UserId $UserId | Where-Object { $_.Privileged })) {
        $blockers += [pscustomobject]@{ Kind = 'role'; Text = ('privileged role {0} ({1}, {2}, {3})' -f $schedule.RoleName, $schedule.Kind, $schedule.AssignmentType, $schedule.MemberType) }
    }
    return $blockers
}

function Test-SaAnchorTarget {
    # Every live precondition of writing $Anchor on $UserId; returns the reason not to, or ''.
    param(
        [object]$User, [string]$Anchor, [AllowEmptyString()][string]$ExpectedImmutableId,
        [string]$IgnoreDeletedHolder = '', [bool]$RolesDetourFollows = $false
    )
    if (-not $User) { return 'the cloud user no longer exists (deleted?)' }
    if ($User.OnPremisesSyncEnabled -eq $true) { return 'the cloud user is synced now: was it matched meanwhile? Graph cannot change a synced anchor' }
    $current = [string]$User.OnPremisesImmutableId
    if ($current -ceq $Anchor) { return 'the cloud user already holds the anchor: nothing to do' }
    if ($current -and ($current -cne $ExpectedImmutableId)) { return ('its immutableId changed since the audit (now {0})' -f $current) }
    $active = @(Get-SaActiveHolders -Anchor $Anchor)
    if ($active.Count -gt 0) { return ('another active user holds the anchor now: {0} ({1})' -f $active[0].UserPrincipalName, $active[0].Id) }
    $deleted = @(Get-SaDeletedHolders -Anchor $Anchor | Where-Object { $_.Id -ne $IgnoreDeletedHolder })
    if ($deleted.Count -gt 0) { return ('soft-deleted user {0} ({1}) holds the anchor: restore or purge it first' -f $deleted[0].UserPrincipalName, $deleted[0].Id) }
    $blockers = @(Get-SaHardMatchBlockers -UserId $User.Id)
    $roles = @($blockers | Where-Object { $_.Kind -eq 'role' })
    if (($blockers.Count -gt 0) -and -not ($RolesDetourFollows -and ($roles.Count -eq $blockers.Count))) {
        $why = ($blockers | ForEach-Object { $_.Text }) -join '; '
        return ('Entra would refuse the hard match (2026 hardening): {0}. Recovery: clear onPremisesObjectIdentifier, or take the privileged roles off for the match and put them back (roles-detour)' -f $why)
    }
    return ''
}

function Set-SaAnchorChecked {
    # Shared by set-anchor, fix-anchor-encoding and merge: live checks, then the logged write.
    param(
        [string]$Fingerprint, [string]$Code, [string]$Action, [string]$UserId, [string]$Anchor,
        [AllowEmptyString()][string]$ExpectedImmutableId, [string]$Why, [switch]$Confirmed,
        [bool]$RolesDetourFollows = $false, [string]$IgnoreDeletedHolder = ''
    )
    $user = Get-SaUser -UserId $UserId
    $reason = Test-SaAnchorTarget -User $user -Anchor $Anchor -ExpectedImmutableId $ExpectedImmutableId -IgnoreDeletedHolder $IgnoreDeletedHolder -RolesDetourFollows $RolesDetourFollows
    if ($reason) {
        Skip-SaStep $Fingerprint $Code $Action $UserId $reason
        return $false
    }
    $current = [string]$user.OnPremisesImmutableId
    if (-not $Confirmed) {
        $target = '{0} ({1})' -f $user.UserPrincipalName, $UserId
        if (-not (Confirm-SaChange -Target $target -Operation ('{0}: onPremisesImmutableId {1} -> {2}' -f $Why, $current, $Anchor))) { return $false }
    }
    $change = Start-SaChange -Fingerprint $Fingerprint -Code $Code -Action $Action -TargetId $UserId -Property 'onPremisesImmutableId' -Before $current -After $Anchor -Undo 'immutable-id'
    try {
        Invoke-SaWithUpnDetour -Fingerprint $Fingerprint -Code $Code -User $user -Change {
            Set-SaImmutableId -UserId $UserId -Value $Anchor
        }
    }
    catch { Stop-SaChange -Change $change -Result 'failed' -Note ([string]$_); throw }
    if (Test-SaImmutableId -UserId $UserId -Expected $Anchor) {
        Stop-SaChange -Change $change -Result 'done'
        Write-SaDone $Fingerprint $Code ('{0} now holds anchor {1}' -f $user.UserPrincipalName, $Anchor)
        return $true
    }
    Stop-SaChange -Change $change -Result 'unverified' -Note 'the read-back does not show the new anchor yet'
    Write-Warning ('UNVERIFIED [{0}] {1}: the read-back of {2} does not show the new anchor yet; -Undo can reverse it' -f $Fingerprint, $Code, $user.UserPrincipalName)
    return $false
}

function Wait-SaMatch {
    # Starts a delta sync when this is the Entra Connect server, else asks for one; waits until
    # the cloud user shows as synced (matched) or the time is up.
    param([string]$UserId)
    if (Get-Command -Name 'Start-ADSyncSyncCycle' -ErrorAction SilentlyContinue) {
        Start-ADSyncSyncCycle -PolicyType Delta | Out-Null
    }
    else {
        Write-Host 'Run Start-ADSyncSyncCycle -PolicyType Delta on the Entra Connect server now; waiting for the match.'
    }
    $deadline = (Get-Date).AddMinutes($SyncWaitMinutes)
    while ((Get-Date) -lt $deadline) {
        $user = Get-SaUser -UserId $UserId
        if ($user -and ($user.OnPremisesSyncEnabled -eq $true)) { return $true }
        Start-Sleep -Seconds 30
    }
    return $false
}
